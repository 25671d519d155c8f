"""Packages: the seed document's cluster stack on every network node, and every package any
component asks for in the lab image (lab nodes have no route to a mirror: a package missing from
the image fails deploy in the lab only). tests/image/test_image_packages.py checks the built image
itself; this checks the list it is built from, without building anything."""

from __future__ import annotations

import pytest

from conftest import EXAMPLES, load_example
from hastack.components.registry import components
from hastack.lab import image
from hastack.topology.model import Node, Topology

SEED_CLUSTER_STACK = ("pacemaker", "corosync", "cluster-glue", "resource-agents", "crmsh", "fence-agents")
"""The seed document's Pacemaker package list."""

EXAMPLE_FILES = sorted(p.name for p in EXAMPLES.glob("*.yml"))


def node_packages(topo: Topology, node: Node) -> set[str]:
    return {p for c in components() if c.applies(topo, node) for p in c.packages(topo, node)}


def test_there_are_examples() -> None:
    assert {"seed.yml", "four-servers.yml"} <= set(EXAMPLE_FILES)


@pytest.mark.parametrize("example", ["seed.yml", "four-servers.yml"])
def test_every_network_node_gets_the_seeds_cluster_stack(example: str) -> None:
    topo = load_example(example)
    assert topo.network_nodes
    for node in topo.network_nodes:
        missing = set(SEED_CLUSTER_STACK) - node_packages(topo, node)
        assert not missing, f"{example}: {node.name} lacks {sorted(missing)}"


@pytest.mark.parametrize("example", EXAMPLE_FILES)
def test_every_package_of_every_node_is_in_the_image_list(example: str) -> None:
    topo = load_example(example)
    wanted = {p for node in topo.nodes for p in node_packages(topo, node)}
    assert sorted(wanted - set(image.PACKAGES)) == []
