"""Pure parts of the lab: names it plans on the host, its state file, its nftables rules."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from hastack.lab import net, state
from hastack.topology.model import Topology

ROOTFS = Path("/var/lib/hastack/images/x/rootfs")


def small(**network: object) -> Topology:
    return Topology.model_validate({
        "name": "small",
        "network": {"management": "10.78.0.0/24", "vip": "10.78.0.1", **network},
        "nodes": [{"name": "ctl-1", "address": "10.78.0.2", "roles": ["controller"]},
                  {"name": "a-very-long-node-name", "address": "10.78.0.21", "roles": ["network"]}],
    })


def test_host_takes_the_first_address_no_node_and_no_vip_uses(seed: Topology) -> None:
    assert state.host_address(seed) == ipaddress.IPv4Interface("10.77.0.1/24")
    assert state.host_address(small()) == ipaddress.IPv4Interface("10.78.0.3/24")


def test_interface_names_fit_the_kernel_limit_and_stay_distinct() -> None:
    st = state.plan(small(), Path("t.yml"), ROOTFS)
    names = [st.bridge, *(n.veth_host for n in st.nodes.values())]
    assert all(len(n) <= 15 for n in names)
    assert len(set(names)) == len(names)
    assert st.nodes["ctl-1"].veth_host == "vsmall-ctl-1"
    assert st.nodes["ctl-1"].veth_node == "eth0"
    assert st.nodes["ctl-1"].address == "10.78.0.2/24"
    assert state.ifname("v", "small", "a-very-long-node-name") == st.nodes["a-very-long-node-name"].veth_host


def test_plan_names_namespaces_and_cgroups_per_lab(seed: Topology) -> None:
    st = state.plan(seed, Path("examples/seed.yml"), ROOTFS)
    assert st.nodes["net-1"].netns == "hastack-seed-net-1"
    assert st.nodes["net-1"].cgroup == "hastack/seed/net-1"
    assert st.socket == "/run/hastack/seed/power/power.sock"
    assert st.topology == str(Path("examples/seed.yml").resolve())


def test_state_round_trips_through_json(seed: Topology) -> None:
    st = state.plan(seed, Path("examples/seed.yml"), ROOTFS)
    st.cuts.append(["ctl-1", "*"])
    st.nodes["ctl-1"].pid = 1234
    again = state.LabState.from_json(st.to_json())
    assert again == st
    assert state.shape(again) == state.shape(st)


def test_state_files_are_written_atomically_and_updated_under_lock(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   seed: Topology) -> None:
    monkeypatch.setattr(state, "LABS", tmp_path)
    st = state.plan(seed, Path("examples/seed.yml"), ROOTFS)
    state.write(st)
    with state.update("seed") as cur:
        cur.power_pid = 42
    assert state.read("seed") is not None and state.read("seed").power_pid == 42  # type: ignore[union-attr]
    assert [s.name for s in state.all_labs()] == ["seed"]
    assert not list(tmp_path.glob("seed/.state.*"))


def test_lab_problem_accepts_the_examples_and_rejects_collisions(seed: Topology) -> None:
    assert state.lab_problem(seed) is None
    assert state.lab_problem(small()) is None
    clash = small(vip="10.78.0.2")
    assert "not unique" in (state.lab_problem(clash) or "")
    outside = small(vip="10.99.0.1")
    assert "10.99.0.1" in (state.lab_problem(outside) or "")


def test_ruleset_isolates_the_bridge_and_expresses_cuts(seed: Topology) -> None:
    st = state.plan(seed, Path("examples/seed.yml"), ROOTFS)
    text = net.ruleset(st)
    assert 'iifname "hs-seed" oifname != "hs-seed" drop' in text
    assert "vseed-ctl-1" not in text
    st.cuts = [["ctl-1", "*"], ["net-1", "net-2"]]
    text = net.ruleset(st)
    assert text.count('iifname "vseed-ctl-1" drop') == 2  # forward and input (to the host)
    assert 'oifname "vseed-ctl-1" drop' in text
    assert 'iifname "vseed-net-1" oifname "vseed-net-2" drop' in text
    assert 'iifname "vseed-net-2" oifname "vseed-net-1" drop' in text
    assert text.index("delete table bridge hastack-seed") < text.index("chain cut_forward")


def test_macs_are_stable_local_unicast() -> None:
    a, b = net.mac("seed", "ctl-1"), net.mac("seed", "ctl-2")
    assert a == net.mac("seed", "ctl-1") and a != b
    first = int(a.split(":")[0], 16)
    assert first & 0x02 and not first & 0x01


def test_a_management_net_the_host_already_routes_is_refused() -> None:
    lab_net = ipaddress.IPv4Network("10.77.0.0/24")
    routes = [{"dst": "default", "dev": "eth0"}, {"dst": "192.0.2.0/24", "dev": "eth0"},
              {"dst": "10.77.0.1", "dev": "hs-seed", "type": "local"},
              {"dst": "10.77.0.0/24", "dev": "hs-seed"}]
    assert net.busy_route(routes, lab_net, "hs-seed") is None
    routes.append({"dst": "10.0.0.0/8", "dev": "wg0"})
    assert net.busy_route(routes, lab_net, "hs-seed") == "10.0.0.0/8 dev wg0"


def test_a_state_written_by_newer_or_older_code_still_loads(seed: Topology) -> None:
    """The power switch reads the state on every request: a field it does not know (a newer hastack
    wrote it) or one that is missing (an older one did) must not make it stop answering."""
    st = state.plan(seed, Path("seed.yml"), Path("/rootfs"))
    doc = json.loads(st.to_json())
    doc["future_field"] = 1
    doc["nodes"]["net-1"]["future_node_field"] = "x"
    del doc["nodes"]["net-2"]["fences"]
    back = state.LabState.from_json(json.dumps(doc))
    assert back.nodes["net-1"].fences == ["net-2"] and back.nodes["net-2"].fences == []
    assert back.nodes["ctl-1"] == st.nodes["ctl-1"]


def with_nodes(seed: Topology, drop: str | None = None, add: dict[str, object] | None = None) -> Topology:
    nodes = [n.model_dump(mode="json", exclude_none=True) for n in seed.nodes if n.name != drop]
    return Topology.model_validate({**seed.model_dump(mode="json", exclude_none=True),
                                    "nodes": nodes + ([add] if add else [])})


def test_a_lab_grows_by_the_nodes_the_topology_adds_and_keeps_the_ones_it_leaves_out(seed: Topology) -> None:
    """Issue 16's replacement: ctl-3 left out (dead), ctl-4 added on a new address."""
    old = state.plan(seed, Path("examples/seed.yml"), ROOTFS)
    old.nodes["ctl-1"].pid, old.nodes["ctl-3"].power = 4321, "off"
    ctl4 = {"name": "ctl-4", "address": "10.77.0.14", "roles": ["controller"]}
    new = state.plan(with_nodes(seed, drop="ctl-3", add=ctl4), Path("examples/seed.yml"), ROOTFS)
    assert state.shape(new) != state.shape(old)
    merged = state.grown(old, new)
    assert merged is not None
    assert set(merged.nodes) == set(old.nodes) | {"ctl-4"}
    assert merged.nodes["ctl-1"].pid == 4321 and merged.nodes["ctl-3"].power == "off"  # as they were
    assert merged.nodes["ctl-4"] == new.nodes["ctl-4"]
    assert old.nodes.keys() == set(state.plan(seed, Path("examples/seed.yml"), ROOTFS).nodes)  # old untouched


def test_a_lab_does_not_grow_into_another_lab(seed: Topology) -> None:
    old = state.plan(seed, Path("examples/seed.yml"), ROOTFS)
    moved = {"name": "ctl-4", "address": "10.77.0.13", "roles": ["controller"]}  # ctl-3's address, still in the lab
    assert state.grown(old, state.plan(with_nodes(seed, drop="ctl-3", add=moved), Path("x.yml"), ROOTFS)) is None
    readdressed = seed.model_dump(mode="json", exclude_none=True)
    readdressed["nodes"][0]["address"] = "10.77.0.19"
    assert state.grown(old, state.plan(Topology.model_validate(readdressed), Path("x.yml"), ROOTFS)) is None
    assert state.grown(old, state.plan(seed, Path("x.yml"), Path("/other/rootfs"))) is None
