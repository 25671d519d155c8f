"""Scenarios as data: targets chosen from what the watcher sees, actions dispatched to the fault API."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from hastack.drills.scenarios import SCENARIOS, Action, SelectorError, World, by_name, resolve


class RecordingFaults:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def power(self, node: str, action: str, /) -> object:
        self.calls.append(("power", node, action))
        return None

    def cut(self, node: str, peers: Sequence[str] | None = None, /) -> object:
        self.calls.append(("cut", node) if peers is None else ("cut", node, *peers))
        return None

    def heal(self, node: str, /) -> object:
        self.calls.append(("heal", node))
        return None

    def freeze(self, node: str, /) -> object:
        self.calls.append(("freeze", node))
        return None

    def thaw(self, node: str, /) -> object:
        self.calls.append(("thaw", node))
        return None

    def kill_service(self, node: str, unit: str, signal: str, whom: str = "all", /) -> object:
        self.calls.append(("kill_service", node, unit, signal))
        return None

    def start_service(self, node: str, unit: str, /) -> object:
        self.calls.append(("start_service", node, unit))
        return None

    def recover(self, /) -> object:
        self.calls.append(("recover",))
        return None


WORLD = World(controllers=("ctl-1", "ctl-2", "ctl-3"), network_nodes=("net-1", "net-2"), vip=("ctl-1",),
              agents=("net-2",), writer="ctl-1", queue_leader="ctl-3")


def test_every_issue_scenario_exists_with_a_heal() -> None:
    names = {s.name for s in SCENARIOS}
    assert names == {"power-off-vip-writer", "cut-vip-writer", "kill-galera-writer", "kill-queue-leader",
                     "kill-haproxy-vip", "kill-memcached", "power-off-active-network", "cut-active-network",
                     "freeze-vip-controller", "soak", "power-off-other-controller", "power-off-passive-network",
                     "kill-keepalived-vip", "stop-keepalived-vip", "stop-galera-writer", "kill-galera-writer-twice",
                     "kill-corosync-active-network", "kill-pacemaker-active-network", "partition-network-nodes",
                     "partition-vip-controller", "power-off-all-controllers", "stop-dhcp-agent-active-network"}
    self_healed = {"soak", "stop-dhcp-agent-active-network"}  # nothing undoes the fault but the product
    for s in SCENARIOS:
        assert bool(s.fault) != (s.name == "soak"), s.name  # the soak alone injects nothing
        assert bool(s.heal) != (s.name in self_healed), s.name
        assert all(a.unit for a in (*s.fault, *s.heal) if a.op in ("kill", "start")), s.name
        assert s.timeline_bound() > s.baseline_s + s.hold_s + s.settle_s
    assert by_name("freeze-vip-controller").hold_s == 30
    assert by_name("power-off-network-node") is by_name("power-off-active-network")  # issue 13's name
    assert "agents" in by_name("cut-active-network").tags
    assert by_name("soak").hold_s == 600 and by_name("soak").target == "none"
    stop = by_name("stop-dhcp-agent-active-network").fault[0]
    assert (stop.op, stop.unit, stop.signal, stop.whom) == ("kill", "neutron-dhcp-agent", "STOP", "main")
    assert stop.describe("net-1") == "kill -STOP neutron-dhcp-agent (main process) on net-1"


def test_a_partitioned_network_node_is_healed_then_powered_on_because_it_was_fenced() -> None:
    s = by_name("cut-active-network")
    assert [a.op for a in s.heal] == ["heal", "power_on"]


def test_unknown_scenario_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="power-off-vip-writer"):
        by_name("nope")


@pytest.mark.parametrize(("action", "call"), [
    (Action("power_off"), ("power", "n", "off")),
    (Action("power_on"), ("power", "n", "on")),
    (Action("cut"), ("cut", "n")),
    (Action("heal"), ("heal", "n")),
    (Action("freeze"), ("freeze", "n")),
    (Action("thaw"), ("thaw", "n")),
    (Action("kill", "mariadb"), ("kill_service", "n", "mariadb", "KILL")),
    (Action("kill", "haproxy", "TERM"), ("kill_service", "n", "haproxy", "TERM")),
    (Action("start", "mariadb"), ("start_service", "n", "mariadb")),
])
def test_actions_dispatch_to_the_fault_api(action: Action, call: tuple[str, ...]) -> None:
    faults = RecordingFaults()
    action.apply(faults, "n")
    assert faults.calls == [call]
    assert "n" in action.describe("n")


def test_a_kill_without_a_unit_is_refused_before_touching_anything() -> None:
    faults = RecordingFaults()
    with pytest.raises(ValueError):
        Action("kill").apply(faults, "n")
    assert faults.calls == []


def test_selectors_pick_from_what_the_watcher_sees() -> None:
    assert resolve("vip", WORLD) == "ctl-1"
    assert resolve("vip_writer", WORLD) == "ctl-1"
    assert resolve("writer", WORLD) == "ctl-1"
    assert resolve("queue_leader", WORLD) == "ctl-3"
    assert resolve("agents", WORLD) == "net-2"
    assert resolve("other_controller", WORLD) == "ctl-2"


def test_selectors_refuse_a_lab_in_the_wrong_state() -> None:
    from dataclasses import replace

    with pytest.raises(SelectorError, match="Galera writer is ctl-2"):
        resolve("vip_writer", replace(WORLD, writer="ctl-2"))
    with pytest.raises(SelectorError, match="2 nodes"):
        resolve("vip", replace(WORLD, vip=("ctl-1", "ctl-2")))
    with pytest.raises(SelectorError, match="none"):
        resolve("agents", replace(WORLD, agents=()))
    with pytest.raises(SelectorError):
        resolve("writer", replace(WORLD, writer=None))
    with pytest.raises(SelectorError):
        resolve("queue_leader", replace(WORLD, queue_leader=None))
    with pytest.raises(SelectorError):
        resolve("other_controller", replace(WORLD, controllers=("ctl-1",)))
    # With the writer away from the VIP holder, "other" avoids both.
    assert resolve("other_controller", replace(WORLD, writer="ctl-2")) == "ctl-3"


def test_every_server_of_the_four_server_figure_can_be_targeted() -> None:
    """2 controllers + 2 network nodes: the VIP holder, the other controller, the active and the
    standby network node are four distinct targets."""
    four = World(controllers=("ctl-1", "ctl-2"), network_nodes=("net-1", "net-2"), vip=("ctl-2",),
                 agents=("net-1",), writer="ctl-2")
    picked = [resolve(by_name(n).target, four) for n in ("power-off-vip-writer", "power-off-other-controller",
                                                          "power-off-active-network", "power-off-passive-network")]
    assert picked == ["ctl-2", "ctl-1", "net-1", "net-2"]
    with pytest.raises(SelectorError):
        resolve("passive_network", World(("ctl-1",), ("net-1",), ("ctl-1",), ("net-1",), "ctl-1"))


def test_partitions_cut_the_node_from_its_peers_only() -> None:
    faults = RecordingFaults()
    by_name("partition-network-nodes").fault[0].apply(faults, "net-2", WORLD)
    by_name("partition-vip-controller").fault[0].apply(faults, "ctl-1", WORLD)
    assert faults.calls == [("cut", "net-2", "net-1"), ("cut", "ctl-1", "ctl-2", "ctl-3", "net-1", "net-2")]
    assert "partition ctl-1 from the rest" in by_name("partition-vip-controller").fault[0].describe("ctl-1")
    with pytest.raises(ValueError):  # without the world a partition has no peers: nothing is cut
        Action("cut", peers="cluster").apply(faults, "ctl-1")
    assert len(faults.calls) == 2


def test_frozen_daemons_are_continued_then_started() -> None:
    for name, unit in (("stop-galera-writer", "mariadb"), ("stop-keepalived-vip", "keepalived")):
        s = by_name(name)
        assert [(a.op, a.unit, a.signal) for a in s.fault] == [("kill", unit, "STOP")]
        assert [(a.op, a.unit) for a in s.heal][:2] == [("kill", unit), ("start", unit)]
        assert s.heal[0].signal == "CONT"


def test_a_killed_cluster_stack_is_brought_back_even_after_a_fence() -> None:
    for name in ("kill-corosync-active-network", "kill-pacemaker-active-network", "partition-network-nodes"):
        ops = [(a.op, a.unit) for a in by_name(name).heal]
        assert ops[-3:] == [("power_on", None), ("start", "corosync"), ("start", "pacemaker")], name


def test_the_double_fault_strikes_the_next_writer_within_the_hold() -> None:
    s = by_name("kill-galera-writer-twice")
    assert s.then is not None and s.then.target == "writer" and s.then.after_s < s.hold_s


def test_a_full_power_loss_powers_every_controller_and_heals_with_recover() -> None:
    faults = RecordingFaults()
    s = by_name("power-off-all-controllers")
    for a in s.fault:
        a.apply(faults, "", WORLD)
    for a in s.heal:
        a.apply(faults, "", WORLD)
    assert faults.calls == [*(("power", c, "off") for c in WORLD.controllers),
                            *(("power", c, "on") for c in WORLD.controllers), ("recover",)]
    with pytest.raises(ValueError):
        Action("power_off_all").apply(RecordingFaults(), "")
