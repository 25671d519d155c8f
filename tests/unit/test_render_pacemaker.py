"""The crmsh configuration: properties, fencing, the agent group. Parsed into objects, then asserted."""

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
    assert "meta" not in of_kind(pacemaker.script(seed), "group")[0]


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


def test_group_holds_the_three_agents_as_systemd_resources(seed: Topology) -> None:
    text = pacemaker.script(seed)
    ((_, name, *members),) = of_kind(text, "group")
    assert name == "neutron-agents"
    # the namespace cleanup first (it stops last), then metadata before the agents that proxy to it
    assert members == ["hastack-neutron-cleanup", "neutron-metadata-agent", "neutron-dhcp-agent",
                       "neutron-l3-agent"]
    agents = {o[1]: o for o in of_kind(text, "primitive") if o[2].startswith("systemd:")}
    assert {o[2] for o in agents.values()} == {f"systemd:{m}" for m in members}
    for prim in agents.values():
        ops = " ".join(prim)
        for op in ("start", "stop", "monitor"):
            assert f"op {op} " in ops
        assert re.search(r"op monitor interval=\d+s timeout=\d+s", ops)


def test_two_node_mode_sets_priority_fencing_delay_and_group_priority(seed: Topology) -> None:
    topo = variant(seed, 2, qnetd=False, delay=7)
    text = pacemaker.script(topo)
    assert props(text)["priority-fencing-delay"] == "7s"
    ((*_, meta, prio),) = of_kind(text, "group")
    assert meta == "meta" and prio.startswith("priority=") and int(prio.split("=")[1]) > 0


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
    defined = {o[1] for o in objects(text) if o[0] in {"primitive", "group", "location"}}
    assert defined == set(pacemaker.owned_ids(seed))
