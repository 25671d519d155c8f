"""The crmsh configuration: properties, fencing, the agents (colocated, ordered, one tag), as objects."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from test_render_corosync import variant

from hastack.components import pacemaker
from hastack.components.base import Ctx
from hastack.components.registry import desired
from hastack.topology.model import FenceDevice, Topology


def objects(text: str) -> list[list[str]]:
    """crmsh file -> one token list per object (continuation lines joined, comments dropped)."""
    joined = re.sub(r"\\\n\s*", " ", "\n".join(ln for ln in text.splitlines() if not ln.startswith("#")))
    return [line.split() for line in joined.splitlines() if line.strip()]


def of_kind(text: str, kind: str) -> list[list[str]]:
    return [o for o in objects(text) if o[0] == kind]


def props(text: str) -> dict[str, str]:
    ((_, set_id, *pairs),) = of_kind(text, "property")
    assert set_id == "cib-bootstrap-options:"
    return dict(p.split("=", 1) for p in pairs)


def test_cluster_properties(seed: Topology) -> None:
    p = props(pacemaker.script(seed))
    assert p["stonith-enabled"] == "true" and p["no-quorum-policy"] == "stop"
    assert p["dc-deadtime"] == f"{seed.tuning.corosync.dc_deadtime_s}s"
    assert p["symmetric-cluster"] == "true" and "cluster-recheck-interval" in p
    assert p["priority-fencing-delay"] == "0s"  # the qdevice breaks ties: no delay, written as 0s


def test_stickiness_default(seed: Topology) -> None:
    ((_, set_id, *pairs),) = of_kind(pacemaker.script(seed), "rsc_defaults")
    assert int(dict(p.split("=", 1) for p in pairs)["resource-stickiness"]) > 0


def test_one_fence_device_per_network_node_kept_off_itself(four: Topology) -> None:
    text = pacemaker.script(four)
    prims = {o[1]: o for o in of_kind(text, "primitive") if o[2].startswith("stonith:")}
    assert sorted(prims) == ["fence-net-1", "fence-net-2"]
    for node in four.network_nodes:
        prim = prims[f"fence-{node.name}"]
        assert node.fencing is not None and prim[2] == f"stonith:{node.fencing.agent}"
        assert f"pcmk_host_list={node.name}" in prim and f"plug={node.name}" in prim
        assert "monitor" in prim
    locs = {(o[2], o[3], o[4]) for o in of_kind(text, "location")}
    assert locs == {(f"fence-{n.name}", "-inf:", n.name) for n in four.network_nodes}


AGENTS = ["hastack-neutron-cleanup", "neutron-metadata-agent", "neutron-dhcp-agent", "neutron-l3-agent"]


def test_the_agents_are_systemd_resources_named_by_one_tag(seed: Topology) -> None:
    text = pacemaker.script(seed)
    assert not of_kind(text, "group")  # a group would start them one after another
    ((_, name, *members),) = of_kind(text, "tag")
    assert name == "neutron-agents" and members == AGENTS
    agents = {o[1]: o for o in of_kind(text, "primitive") if o[2].startswith("systemd:")}
    assert {o[2] for o in agents.values()} == {f"systemd:{m}" for m in members}
    for prim in agents.values():
        ops = " ".join(prim)
        for op in ("start", "stop", "monitor"):
            assert f"op {op} " in ops
        assert re.search(r"op monitor interval=\d+s timeout=\d+s", ops)
        assert "meta" not in prim  # priority only where priority-fencing-delay needs it


def pairs(text: str, kind: str, score: str) -> set[tuple[str, str]]:
    found = of_kind(text, kind)
    assert all(o[2] == score for o in found), found
    return {(o[3], o[4]) for o in found if len(o) == 5}


def test_the_agents_start_in_parallel_after_the_cleanup_and_stay_with_it(seed: Topology) -> None:
    """Every agent with the cleanup resource (the primary), each ordered after it and after nothing
    else: the three start at once. (crm_simulate checks what Pacemaker makes of it: tests/image.)"""
    text = pacemaker.script(seed)
    cleanup, *agents = AGENTS
    assert pairs(text, "colocation", "inf:") == {(a, cleanup) for a in agents}
    assert pairs(text, "order", "Mandatory:") == {(cleanup, a) for a in agents}
    assert len(of_kind(text, "colocation")) == len(of_kind(text, "order")) == 3


def test_with_open_vswitch_its_agent_comes_between(seed: Topology) -> None:
    topo = seed.model_copy(update={"openstack": seed.openstack.model_copy(update={"l2_agent": "openvswitch"})})
    text = pacemaker.script(topo)
    cleanup, *agents = AGENTS
    ovs = next(o[1] for o in of_kind(text, "primitive") if "openvswitch" in o[1])
    assert pairs(text, "colocation", "inf:") == {(a, cleanup) for a in [ovs, *agents]}
    assert pairs(text, "order", "Mandatory:") == {(cleanup, ovs), *((ovs, a) for a in agents)}


def test_two_node_mode_sets_priority_fencing_delay_and_agent_priority(seed: Topology) -> None:
    topo = variant(seed, 2, qnetd=False, delay=7)
    text = pacemaker.script(topo)
    assert props(text)["priority-fencing-delay"] == "7s"
    agents = [o for o in of_kind(text, "primitive") if o[2].startswith("systemd:")]
    # on every one: a node's priority is the sum over what runs there, as each group member had it
    for *_, meta, prio in agents:
        assert meta == "meta" and prio.startswith("priority=") and int(prio.split("=")[1]) > 0


def test_deploy_deletes_the_old_group_and_removed_fence_devices_in_the_same_session(seed: Topology) -> None:
    live = ["fence-net-1", "fence-net-2", "fence-net-9", "hastack-neutron-cleanup", "neutron-agents", "other"]
    assert pacemaker.stale_resources(seed, live) == ["fence-net-9", "neutron-agents"]
    commands = pacemaker.configure_commands(seed, live).decode().splitlines()
    assert commands == ["delete --force fence-net-9", "delete --force neutron-agents",
                        f"load update {pacemaker.SCRIPT}", "commit"]
    assert pacemaker.configure_commands(seed, ["fence-net-1", *AGENTS]).decode().splitlines()[0].startswith("load")
    # deletes run on a status-less copy whose configuration then replaces the live one; else live
    on_copy = pacemaker.apply_argv(pacemaker.stale_resources(seed, live))
    assert on_copy[:2] == ["sh", "-c"] and "--replace --scope configuration" in on_copy[2]
    assert pacemaker.apply_argv(pacemaker.stale_resources(seed, ["fence-net-1", "fence-net-2", *AGENTS])) == [
        "crm", "configure"]


def test_fencing_off_disables_stonith_and_renders_no_device(seed: Topology) -> None:
    topo = seed.model_copy(update={"fencing": seed.fencing.model_copy(update={"enabled": False})})
    text = pacemaker.script(topo)
    assert props(text)["stonith-enabled"] == "false"
    assert not [o for o in of_kind(text, "primitive") if o[2].startswith("stonith:")]


def test_script_identical_on_every_network_node_without_restarts(seed: Topology,
                                                                 ctx_of: Callable[[Topology], Ctx]) -> None:
    state = desired(ctx_of(seed))
    scripts = [f for n in seed.network_nodes for f in state[n.name].files if f.path == pacemaker.SCRIPT]
    assert len(scripts) == 2 and len({f.data for f in scripts}) == 1
    assert all(f.restarts == () for f in scripts)
    assert not any(f.path == pacemaker.SCRIPT for f in state["ctl-1"].files)
    assert not set(pacemaker.AGENT_UNITS) & set(state["net-1"].units)


@pytest.mark.parametrize(("value", "written"), [
    ("net-1", "net-1"), (True, "1"), (False, "0"), (8080, "8080"), ("two words", '"two words"'),
    ('say "hi"', '"say \\"hi\\""'), ("", '""'), ("back\\slash", '"back\\\\slash"'), ("a#b", '"a#b"'),
    ("x' y", '"x\' y"'),
])
def test_fence_param_values_are_quoted_for_crmsh(value: str | int | bool, written: str) -> None:
    assert pacemaker.crm_value(value) == written


@pytest.mark.parametrize("params", [{"plug": "a\nprimitive x"}, {"plug": "caf\u00e9"}, {"a b": "x"}])
def test_fence_param_the_model_refuses_is_refused_again(seed: Topology, params: dict[str, str]) -> None:
    """The model refuses these; the renderer does too, for a caller that skipped the model."""
    node = seed.node("net-1").model_copy(
        update={"fencing": FenceDevice.model_construct(agent="fence_hastack", params=params)})
    with pytest.raises(ValueError):
        pacemaker.fence_params(node, node.fencing)  # type: ignore[arg-type]


def test_owned_ids_cover_every_object(seed: Topology) -> None:
    text = pacemaker.script(seed)
    defined = {o[1] for o in objects(text) if o[0] in {"primitive", "tag", "location", "colocation", "order"}}
    assert defined == set(pacemaker.owned_ids(seed))
