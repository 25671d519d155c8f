"""The fence agent refresh writes only inside the node's disk, whatever its root planted there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hastack.lab import node
from hastack.lab.errors import LabError
from hastack.lab.image import FENCE_AGENT
from hastack.lab.state import NodeState


def _node(tmp_path: Path) -> NodeState:
    (tmp_path / "disk" / "upper").mkdir(parents=True)
    return NodeState(name="net-1", address="10.77.0.21/24", netns="n", veth_host="h", veth_node="v",
                     dir=str(tmp_path / "disk"), cgroup="hastack/net-1")


def test_the_agent_is_written_fresh_and_executable(tmp_path: Path) -> None:
    n = _node(tmp_path)
    node.refresh_fence_agent(n)
    agent = tmp_path / "disk/upper/usr/sbin/fence_hastack"
    assert agent.read_bytes() == FENCE_AGENT.read_bytes()
    assert agent.stat().st_mode & 0o777 == 0o755


def test_a_link_planted_at_the_agent_is_replaced_not_followed(tmp_path: Path) -> None:
    n = _node(tmp_path)
    host_file = tmp_path / "host-secret"
    host_file.write_text("host data\n")
    host_file.chmod(0o600)
    sbin = tmp_path / "disk/upper/usr/sbin"
    sbin.mkdir(parents=True)
    (sbin / "fence_hastack").symlink_to(host_file)
    node.refresh_fence_agent(n)
    assert host_file.read_text() == "host data\n"
    assert host_file.stat().st_mode & 0o777 == 0o600
    assert not (sbin / "fence_hastack").is_symlink()


@pytest.mark.parametrize("planted", ["usr", "usr/sbin"])
def test_a_link_planted_in_place_of_a_directory_stops_the_refresh(tmp_path: Path, planted: str) -> None:
    n = _node(tmp_path)
    host_dir = tmp_path / "host-dir"
    (host_dir / "sbin").mkdir(parents=True)
    link = tmp_path / "disk/upper" / planted
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(host_dir / "sbin" if planted == "usr/sbin" else host_dir)
    with pytest.raises(LabError) as err:
        node.refresh_fence_agent(n)
    assert err.value.code == "node-disk-link"
    assert os.listdir(host_dir / "sbin") == []
