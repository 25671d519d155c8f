"""The runner against a fake lab and fake workloads: order of phases, healing whatever happens, bounds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hastack.drills.runner import Bindings, DrillAborted, Timing, run_drill, run_series
from hastack.drills.samples import Recorder
from hastack.drills.scenarios import Scenario, by_name

FAST = Timing(precheck_timeout_s=0.2, poll_s=0.02, join_timeout_s=3.0, sampler_rate=50.0, align_wait_s=0.05)


def quick(name: str, **kw: Any) -> Scenario:
    timings = {"baseline_s": 0.15, "hold_s": 0.3, "settle_s": 0.1, "healthy_timeout_s": 2.0}
    return replace(by_name(name), **{**timings, **kw})


class FakeLab:
    """FaultApi + observe + status. A powered-off or cut node drops out of every placement."""

    def __init__(self, polls_to_heal: int = 3) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.down: set[str] = set()
        self.polls_since_heal = 10**9  # healthy before any fault
        self.polls_to_heal = polls_to_heal
        self.raise_on: dict[str, BaseException] = {}
        self.vip = ["ctl-1"]
        self.writer: str | None = "ctl-1"
        self.writer_follows_mariadb = False
        """A killed writer hands the sessions to the next controller (like HAProxy's backups)."""
        self.vip_follows_keepalived = False
        """A restarted keepalived hands the VIP to the next controller (like nopreempt backups)."""

    def _call(self, *call: str) -> None:
        self.calls.append(call)
        if call[0] in self.raise_on:
            raise self.raise_on[call[0]]

    def power(self, node: str, action: str, /) -> object:
        self._call("power", node, action)
        if action == "off":
            self.down.add(node)
        else:
            self.down.discard(node)
            self.polls_since_heal = 0
        return None

    def cut(self, node: str, peers: Sequence[str] | None = None, /) -> object:
        self._call("cut", node, *(peers or ()))
        self.down.add(node)
        return None

    def heal(self, node: str, /) -> object:
        self._call("heal", node)
        self.down.discard(node)
        self.polls_since_heal = 0
        return None

    def freeze(self, node: str, /) -> object:
        self._call("freeze", node)
        return None

    def thaw(self, node: str, /) -> object:
        self._call("thaw", node)
        return None

    def kill_service(self, node: str, unit: str, signal: str, whom: str = "all", /) -> object:
        self._call("kill_service", node, unit, signal)
        if unit == "mariadb" and self.writer_follows_mariadb and self.writer == node:
            order = ["ctl-1", "ctl-2", "ctl-3"]
            self.writer = order[(order.index(node) + 1) % 3]
        if unit == "keepalived" and self.vip_follows_keepalived and self.vip == [node]:
            order = ["ctl-1", "ctl-2", "ctl-3"]
            self.vip = [order[(order.index(node) + 1) % 3]]
        return None

    def start_service(self, node: str, unit: str, /) -> object:
        self._call("start_service", node, unit)
        self.polls_since_heal = 0
        return None

    def recover(self, /) -> object:
        self._call("recover")
        self.polls_since_heal = 0
        return None

    def observe(self) -> dict[str, Any]:
        vip = [n for n in self.vip if n not in self.down] or ["ctl-2"]
        writer = self.writer if self.writer not in self.down else "ctl-2"
        return {"vip": vip, "agents": ["net-1"], "galera_writer": writer}

    def status(self) -> tuple[bool, str]:
        self.polls_since_heal += 1
        if self.down:
            return False, f"{', '.join(sorted(self.down))} down"
        if self.polls_since_heal < self.polls_to_heal:
            return False, "rejoining"
        return True, "healthy"

    def bindings(self, leader: str | None = None) -> Bindings:
        return Bindings(self, self.observe, self.status, ("ctl-1", "ctl-2", "ctl-3"), ("net-1", "net-2"),
                        (lambda: leader) if leader else None)


class FakeWorkload:
    """Succeeds every 5 ms unless `node` is down in the fake lab."""

    def __init__(self, lab: FakeLab, stream: str = "db", node: str = "ctl-1") -> None:
        self.lab, self.stream, self.node, self.name = lab, stream, node, stream
        self.prepared = self.verified = self.stopped_by_event = False
        self.fail_prepare = False
        self.crash = False

    def prepare(self) -> None:
        if self.fail_prepare:
            raise ConnectionRefusedError("no")
        self.prepared = True

    def run(self, rec: Recorder, stop: threading.Event, duration: float) -> None:
        if self.crash:
            raise RuntimeError("boom")
        end = time.monotonic() + duration
        for i in range(100000):
            if stop.wait(0.005):
                self.stopped_by_event = True
                return
            if time.monotonic() > end:
                return
            began = rec.now()
            ok = self.node not in self.lab.down
            rec.op(self.stream, began, ok, id=f"r-{i}", error=None if ok else "down")

    def verify(self, rec: Recorder) -> None:
        self.verified = True
        rec.check("db_present", {"ctl-1": [f"r-{i}" for i in range(100000)]})


def test_a_drill_runs_its_phases_in_order_and_scores_the_outage() -> None:
    lab = FakeLab()
    w = FakeWorkload(lab)
    run = run_drill(quick("power-off-vip-writer"), lab.bindings(), [w], timing=FAST)
    assert run.target == "ctl-1"
    assert lab.calls == [("power", "ctl-1", "off"), ("power", "ctl-1", "on")]
    kinds = [e.kind for e in run.recording.events if e.kind != "status"]
    assert kinds == ["start", "fault", "heal", "healthy", "placed", "stop"]
    assert w.prepared and w.verified and w.stopped_by_event
    f = run.figures()
    assert 0.3 <= f["db_gap_s"] <= 1.5  # the hold, plus scheduling slack on a busy machine
    assert f["db_failed"] > 0
    assert f["db_lost"] == 0
    assert f["vip_moved_s"] is not None and f["vip_moved_s"] < 0.2
    assert f["heal_to_healthy_s"] is not None and f["heal_to_healthy_s"] >= 2 * FAST.poll_s
    assert f["split_brain_samples"] == 0
    assert run.errors == ()
    assert len(run.recording.placements) > 10


def test_the_heal_comes_when_the_heal_when_file_appears_not_at_the_end_of_the_hold(tmp_path: Path) -> None:
    lab = FakeLab()
    flag = tmp_path / "done"
    threading.Timer(0.6, flag.touch).start()
    t0 = time.monotonic()
    run = run_drill(quick("power-off-vip-writer", hold_s=30.0, heal_when=str(flag)), lab.bindings(),
                    [FakeWorkload(lab)], timing=FAST)
    assert time.monotonic() - t0 < 15.0  # not the 30 s hold
    assert lab.calls == [("power", "ctl-1", "off"), ("power", "ctl-1", "on")]
    fault, heal = (next(e.t for e in run.recording.events if e.kind == k) for k in ("fault", "heal"))
    assert 0.4 <= heal - fault < 5.0
    assert any(str(flag) in e.text for e in run.recording.events if e.kind == "note")


def test_a_failing_fault_is_recorded_and_healed_at_once() -> None:
    lab = FakeLab()
    lab.raise_on["cut"] = RuntimeError("nft refused")
    t0 = time.monotonic()
    run = run_drill(quick("cut-vip-writer", hold_s=5.0), lab.bindings(), [FakeWorkload(lab)], timing=FAST)
    assert lab.calls == [("cut", "ctl-1"), ("heal", "ctl-1")]
    assert any(e.code == "DRILL-ACTION-FAILED" and "nft refused" in e.message for e in run.errors)
    assert time.monotonic() - t0 < 4.0  # the hold was skipped
    assert any(e.kind == "error" for e in run.recording.events)


def test_every_heal_action_runs_even_when_one_fails() -> None:
    lab = FakeLab()
    lab.raise_on["heal"] = RuntimeError("heal failed")
    run = run_drill(quick("cut-active-network"), replace(lab.bindings(), observe=lambda: {
        "vip": ["ctl-1"], "agents": ["net-1"], "galera_writer": "ctl-1"}), [FakeWorkload(lab)], timing=FAST)
    assert lab.calls == [("cut", "net-1"), ("heal", "net-1"), ("power", "net-1", "on")]
    assert any(e.code == "DRILL-ACTION-FAILED" and "heal failed" in e.message for e in run.errors)


def network_lab(served_after: int | None) -> tuple[FakeLab, Callable[[], dict[str, Any]]]:
    """The agents' node serves a router and a DHCP server; after it is powered off the other node
    serves them `served_after` observations after the heal (never, when None)."""
    lab = FakeLab()
    after_heal = {"n": 0}

    def observe() -> dict[str, Any]:
        seen = lab.observe()
        if ("power", "net-1", "off") not in lab.calls:
            return {**seen, "agents": ["net-1"], "routers": ["net-1"], "dhcp": ["net-1"]}
        if ("power", "net-1", "on") in lab.calls:
            after_heal["n"] += 1
        back = served_after is not None and after_heal["n"] > served_after
        return {**seen, "agents": ["net-2"], "routers": ["net-2"] if back else [], "dhcp": ["net-2"] if back else []}

    return lab, observe


def test_the_drill_watches_until_the_tenant_is_served_again() -> None:
    """`status` is healthy before the router and DHCP server are back: the drill waits for them."""
    lab, observe = network_lab(served_after=8)
    run = run_drill(quick("power-off-active-network"), replace(lab.bindings(), observe=observe),
                    [FakeWorkload(lab)], timing=FAST)
    assert run.errors == ()
    kinds = [e.kind for e in run.recording.events if e.kind in ("heal", "healthy", "placed")]
    assert kinds == ["heal", "healthy", "placed"]
    f = run.figures()
    assert f["routers_moved_s"] is not None and f["dhcp_moved_s"] is not None
    assert f["routers_moved_s"] >= f["agents_moved_s"]


def test_a_router_never_served_again_is_a_run_error() -> None:
    lab, observe = network_lab(served_after=None)
    run = run_drill(quick("power-off-active-network", healthy_timeout_s=1.0), replace(lab.bindings(), observe=observe),
                    [FakeWorkload(lab)], timing=FAST)
    assert [(e.code, "routers, dhcp" in e.message) for e in run.errors] == [("DRILL-NOT-PLACED", True)]
    assert run.figures()["routers_moved_s"] is None


def test_interrupt_during_the_fault_still_heals_and_stops_the_workloads() -> None:
    lab = FakeLab()
    lab.raise_on["freeze"] = KeyboardInterrupt()
    w = FakeWorkload(lab)
    with pytest.raises(KeyboardInterrupt):
        run_drill(quick("freeze-vip-controller"), lab.bindings(), [w], timing=FAST)
    assert lab.calls == [("freeze", "ctl-1"), ("thaw", "ctl-1")]
    assert w.stopped_by_event


def test_an_unhealthy_lab_is_not_touched() -> None:
    lab = FakeLab()
    lab.down.add("ctl-3")
    with pytest.raises(DrillAborted, match="not healthy before") as exc:
        run_drill(quick("power-off-vip-writer"), lab.bindings(), [FakeWorkload(lab)], timing=FAST)
    assert exc.value.code == "DRILL-NOT-HEALTHY"
    assert lab.calls == []


def test_a_lab_in_the_wrong_state_for_the_scenario_is_not_touched() -> None:
    lab = FakeLab()
    lab.writer = "ctl-2"  # and a VIP that does not move when its keepalived restarts
    with pytest.raises(DrillAborted, match=r"^\[DRILL-NO-TARGET\] .*Galera writer is ctl-2"):
        run_drill(quick("power-off-vip-writer"), lab.bindings(), [FakeWorkload(lab)], timing=FAST)
    assert {c[0] for c in lab.calls} == {"kill_service", "start_service"}  # only the bounded set-up tries
    assert len(lab.calls) == 6
    lab.calls.clear()
    lab.vip = ["ctl-1", "ctl-3"]
    with pytest.raises(DrillAborted, match=r"^\[DRILL-NO-TARGET\] .*2 nodes"):
        run_drill(quick("kill-haproxy-vip"), lab.bindings(), [FakeWorkload(lab)], timing=FAST)
    assert lab.calls == []


def test_the_vip_is_moved_onto_the_writer_before_a_vip_writer_drill() -> None:
    lab = FakeLab()
    lab.vip, lab.writer, lab.vip_follows_keepalived = ["ctl-3"], "ctl-2", True
    run = run_drill(quick("power-off-vip-writer"), lab.bindings(), [FakeWorkload(lab)], timing=FAST)
    assert run.target == "ctl-2"
    assert lab.calls[:4] == [("kill_service", "ctl-3", "keepalived", "TERM"), ("start_service", "ctl-3", "keepalived"),
                             ("kill_service", "ctl-1", "keepalived", "TERM"), ("start_service", "ctl-1", "keepalived")]
    assert ("power", "ctl-2", "off") in lab.calls


def test_a_workload_that_cannot_prepare_stops_the_drill_before_the_fault() -> None:
    lab = FakeLab()
    w = FakeWorkload(lab)
    w.fail_prepare = True
    with pytest.raises(DrillAborted, match=r"^\[DRILL-WORKLOAD-CANNOT-START\] workload db cannot start"):
        run_drill(quick("kill-galera-writer"), lab.bindings(), [w], timing=FAST)
    assert lab.calls == []


def test_a_watcher_that_cannot_see_stops_the_drill() -> None:
    lab = FakeLab()

    def blind() -> dict[str, Any]:
        raise TimeoutError("nsenter hung")

    with pytest.raises(DrillAborted, match=r"^\[DRILL-LAB-UNSEEN\] .*nsenter hung"):
        run_drill(quick("kill-galera-writer"), replace(lab.bindings(), observe=blind), [], timing=FAST)
    assert lab.calls == []


def test_never_healthy_after_the_heal_is_an_error_not_a_hang() -> None:
    lab = FakeLab(polls_to_heal=10**9)
    run = run_drill(quick("kill-galera-writer", healthy_timeout_s=0.2), lab.bindings(), [FakeWorkload(lab)],
                    timing=FAST)
    assert lab.calls == [("kill_service", "ctl-1", "mariadb", "KILL"), ("start_service", "ctl-1", "mariadb")]
    assert any(e.code == "DRILL-NOT-HEALED" for e in run.errors)
    assert run.recording.first_event("healthy") is None
    assert run.figures()["heal_to_healthy_s"] is None


def test_the_queue_leader_comes_from_the_broker() -> None:
    lab = FakeLab()
    run = run_drill(quick("kill-queue-leader"), lab.bindings(leader="ctl-3"), [FakeWorkload(lab)], timing=FAST)
    assert run.target == "ctl-3"
    assert lab.calls[0] == ("kill_service", "ctl-3", "rabbitmq-server", "KILL")


def test_a_crashing_workload_is_a_note_not_a_failed_drill() -> None:
    lab = FakeLab()
    w = FakeWorkload(lab, stream="keystone")
    w.crash = True
    run = run_drill(quick("kill-memcached"), lab.bindings(), [w, FakeWorkload(lab)], timing=FAST)
    assert run.target == "ctl-2"
    assert any(e.kind == "note" and "boom" in e.text for e in run.recording.events)


def test_repeat_gives_fresh_workloads_and_statistics() -> None:
    lab = FakeLab()
    made: list[int] = []

    def make(i: int) -> list[FakeWorkload]:
        made.append(i)
        return [FakeWorkload(lab)]

    series = run_series(quick("power-off-vip-writer", hold_s=0.1), lab.bindings(), make, 3, timing=FAST)
    assert made == [0, 1, 2]
    assert [r.index for r in series.runs] == [0, 1, 2]
    st = series.stats["db_gap_s"]
    assert st.n == st.runs == 3
    assert st.min is not None and st.max is not None and st.min <= (st.median or 0) <= st.max
    with pytest.raises(ValueError):
        run_series(quick("power-off-vip-writer"), lab.bindings(), make, 0, timing=FAST)


def test_a_second_fault_strikes_the_new_writer_and_both_are_healed_latest_first() -> None:
    lab = FakeLab()
    lab.writer_follows_mariadb = True
    s = quick("kill-galera-writer-twice")
    assert s.then is not None
    s = replace(s, then=replace(s.then, after_s=0.1))
    run = run_drill(s, lab.bindings(), [FakeWorkload(lab)], timing=FAST)
    assert lab.calls == [("kill_service", "ctl-1", "mariadb", "KILL"), ("kill_service", "ctl-2", "mariadb", "KILL"),
                         ("start_service", "ctl-2", "mariadb"), ("start_service", "ctl-1", "mariadb")]
    assert run.errors == ()
    assert [e.node for e in run.recording.events if e.kind == "fault"] == ["ctl-1", "ctl-2"]


def test_a_second_fault_whose_target_did_not_move_is_an_error_not_a_repeat() -> None:
    lab = FakeLab()
    s = quick("kill-galera-writer-twice")
    assert s.then is not None
    run = run_drill(replace(s, then=replace(s.then, after_s=0.1)), lab.bindings(), [FakeWorkload(lab)], timing=FAST)
    assert lab.calls == [("kill_service", "ctl-1", "mariadb", "KILL"), ("start_service", "ctl-1", "mariadb")]
    assert [e.code for e in run.errors] == ["DRILL-SECOND-FAULT"]


def test_a_partition_names_the_peers_seen_before_the_fault() -> None:
    lab = FakeLab()
    run_drill(quick("partition-vip-controller"), lab.bindings(), [FakeWorkload(lab)], timing=FAST)
    assert lab.calls == [("cut", "ctl-1", "ctl-2", "ctl-3", "net-1", "net-2"), ("heal", "ctl-1")]
