"""One drill, start to end: check healthy, pick the target, start the workloads and the watcher,
baseline, fault, hold, heal, wait for `status` healthy, settle, stop, verify, score.

Written against small interfaces (`FaultApi`, an observe callable, a status callable, `Workload`s)
so the whole sequence runs in unit tests with fakes, and against the lab unchanged.

Safety: once a fault is injected, the heal actions run whatever happens next (an exception, a
failed fault, Ctrl-C), each one even if another failed; workloads and the watcher are bounded by
the scenario's own time bound even if the runner itself hangs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hastack.drills.samples import PLACED, Placement, Recorder, Recording, short_error
from hastack.drills.scenarios import Action, FaultApi, Scenario, SelectorError, World, resolve
from hastack.drills.scoring import Figure, Scores, Stat, aggregate, score
from hastack.drills.workloads import Observe, Sampler, Workload, placement
from hastack.reports import Report, Severity

ACTION_ERROR_CHARS = 2000
HEAL_WHEN_POLL_S = 0.5
"""A failed fault or heal action (e.g. `hastack recover`'s own failure report) is kept this long."""
Status = Callable[[], tuple[bool, str]]
"""`hastack status` as a callable: (healthy, one-line summary). Read-only, may be slow-ish."""
Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Bindings:
    """Everything a drill needs from the outside world."""

    faults: FaultApi
    observe: Observe
    status: Status
    controllers: tuple[str, ...]
    network_nodes: tuple[str, ...]
    queue_leader: Callable[[], str | None] | None = None


@dataclass(frozen=True)
class Timing:
    """The runner's own waits (a scenario's phases are in the scenario)."""

    precheck_timeout_s: float = 120.0
    poll_s: float = 1.0
    join_timeout_s: float = 60.0
    sampler_rate: float = 10.0
    align_wait_s: float = 15.0
    """How long the set-up waits for the VIP to leave a holder whose keepalived it restarted."""


class DrillAborted(Exception):
    """Stopped before any fault was injected: the lab was not healthy or had no valid target. `code`
    is stable: DRILL-LAB-UNSEEN (nothing could be read), DRILL-WATCHER-BLIND (the watcher reports an
    error), DRILL-NOT-HEALTHY (status before the fault), DRILL-WORKLOAD-CANNOT-START, DRILL-NO-TARGET
    (the lab is not in the state the scenario needs)."""

    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(f"[{code}] {message}")


@dataclass(frozen=True)
class DrillRun:
    scenario: Scenario
    index: int
    target: str
    recording: Recording
    scores: Scores
    errors: tuple[Report, ...] = ()
    """What kept the run from being judged whole, each under a code: DRILL-ACTION-FAILED (a fault or
    heal action raised), DRILL-NOT-HEALED (status not healthy within the bound after the heal),
    DRILL-NOT-PLACED (what one node held before is not held by one node again), DRILL-SECOND-FAULT
    (the scenario's second fault found no target), DRILL-WORKLOAD-STUCK, DRILL-VERIFY-FAILED."""

    def figures(self) -> dict[str, Figure]:
        return self.scores.figures()


@dataclass(frozen=True)
class DrillSeries:
    scenario: Scenario
    runs: tuple[DrillRun, ...]
    stats: dict[str, Stat] = field(default_factory=dict)


def wait_healthy(status: Status, timeout: float, poll: float, rec: Recorder | None = None) -> tuple[bool, str]:
    """Poll `status` until healthy (bounded by `timeout` and by a count); record each poll."""
    deadline = time.monotonic() + timeout
    detail = "not polled"
    for _ in range(int(timeout / poll) + 2):
        try:
            ok, detail = status()
        except Exception as exc:  # a status that cannot answer is "not healthy"
            ok, detail = False, short_error(exc)
        if rec is not None:
            rec.event("status", detail, ok=ok)
        if ok or time.monotonic() >= deadline:
            return ok, detail
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
    return False, detail


def world(b: Bindings, scenario: Scenario) -> World:
    """One look at the lab before the fault; a watcher or broker that cannot answer aborts the drill."""
    try:
        p = placement(0.0, b.observe())
        wants_leader = b.queue_leader is not None and scenario.target == "queue_leader"
        leader = b.queue_leader() if wants_leader and b.queue_leader is not None else None
    except Exception as exc:  # nothing has been touched yet: say why and stop
        raise DrillAborted("DRILL-LAB-UNSEEN", f"cannot see the lab before the drill: {short_error(exc)}") from exc
    if p.error:
        raise DrillAborted("DRILL-WATCHER-BLIND", f"the watcher cannot see the lab: {p.error}")
    return World(b.controllers, b.network_nodes, p.vip, p.agents, p.writer, leader)


class Drill:
    """One run of one scenario. Use `run_drill`; the class only keeps the run's state together."""

    def __init__(self, scenario: Scenario, b: Bindings, workloads: Sequence[Workload], timing: Timing,
                 say: Say) -> None:
        self.s, self.b, self.workloads, self.timing, self.say = scenario, b, list(workloads), timing, say
        self.rec = Recorder()
        self.stop = threading.Event()
        self.errors: list[Report] = []
        self.target = ""
        self.second = ""
        """The target of the scenario's `then` fault, once struck."""
        self.world: World | None = None
        self.before: Placement | None = None
        """Everything held before the fault (the VIP, the agents, routers and DHCP servers, the writer)."""

    def precheck(self) -> None:
        ok, detail = wait_healthy(self.b.status, self.timing.precheck_timeout_s, self.timing.poll_s)
        if not ok:
            raise DrillAborted("DRILL-NOT-HEALTHY", f"the lab is not healthy before the drill: {detail}")
        for w in self.workloads:
            try:
                w.prepare()
            except Exception as exc:  # reported as the reason the drill did not start
                raise DrillAborted("DRILL-WORKLOAD-CANNOT-START",
                                   f"workload {w.name} cannot start: {short_error(exc)}") from exc
        if self.s.target == "vip_writer":
            self.align_vip_with_writer()
        try:
            self.world = world(self.b, self.s)
            self.target = resolve(self.s.target, self.world)
        except SelectorError as exc:
            raise DrillAborted("DRILL-NO-TARGET", f"{self.s.name}: {exc}") from exc
        with contextlib.suppress(Exception):  # seen by `world` a moment ago; a failure here only skips the wait
            self.before = placement(0.0, self.b.observe())

    def align_vip_with_writer(self, tries: int = 3) -> None:
        """Before the drill (nothing is measured yet): when the VIP sits on another controller than
        the Galera writer, as after an earlier drill (keepalived does not preempt; every HAProxy
        prefers the same writer), restart keepalived on the holder so the VIP moves on. Bounded;
        a VIP that never lands on the writer aborts the drill with the selector's reason."""
        for _ in range(tries):
            w = world(self.b, self.s)
            if len(w.vip) != 1 or w.writer is None or w.vip[0] == w.writer:
                return
            holder = w.vip[0]
            self.say(f"setup: the VIP is on {holder}, the writer is {w.writer}: restarting keepalived on {holder}")
            self.b.faults.kill_service(holder, "keepalived", "TERM")
            self.b.faults.start_service(holder, "keepalived")
            deadline = time.monotonic() + self.timing.align_wait_s
            while time.monotonic() < deadline and placement(0.0, self.b.observe()).vip == (holder,):
                time.sleep(min(0.5, self.timing.align_wait_s / 10))

    def start(self) -> list[threading.Thread]:
        bound = self.s.timeline_bound()
        runners: list[Workload] = [Sampler(self.b.observe, self.timing.sampler_rate), *self.workloads]
        self.rec.event("start", self.s.title, node=self.target)
        threads = [threading.Thread(target=self._guarded, args=(w, bound), name=f"drill-{w.name}", daemon=True)
                   for w in runners]
        for t in threads:
            t.start()
        return threads

    def _guarded(self, w: Workload, bound: float) -> None:
        try:
            w.run(self.rec, self.stop, bound)
        except Exception as exc:  # a crashed workload shows as a note and a gap
            self.rec.event("note", f"workload {w.name} stopped: {short_error(exc)}", ok=False)

    def error(self, code: str, message: str, node: str = "", *, event: bool = False) -> None:
        """One run error, as a report about this scenario (and the node it concerns); `event` also
        puts it on the recording's timeline."""
        self.errors.append(Report(code, Severity.ERROR, message, area=self.s.name, subject=node or ""))
        if event:
            if node:
                self.rec.event("error", message, node=node, ok=False)
            else:
                self.rec.event("error", message, ok=False)

    def act(self, kind: str, actions: Sequence[Action], node: str | None = None) -> bool:
        """Apply actions in order, recording each; returns False if one raised (the rest still run
        when healing, not when injecting: a half-injected fault is healed, not made worse)."""
        ok = True
        node = self.target if node is None else node
        for a in actions:
            text = a.describe(node)
            self.say(f"{kind}: {text}")
            self.rec.event(kind, text, node=node)
            try:
                a.apply(self.b.faults, node, self.world)
            except Exception as exc:  # recorded; healing must go on (a few per run: kept long enough to act on)
                self.error("DRILL-ACTION-FAILED", f"{kind} '{text}' failed: {short_error(exc, ACTION_ERROR_CHARS)}",
                           node, event=True)
                ok = False
                if kind == "fault":
                    return False
        return ok

    def phases(self) -> None:
        then = self.s.then
        try:
            time.sleep(self.s.baseline_s)
            if self.act("fault", self.s.fault):
                if then is not None:
                    time.sleep(then.after_s)
                    self.strike_again()
                self.hold(max(0.0, self.s.hold_s - (then.after_s if then else 0.0)))
        finally:
            if then is not None and self.second:
                self.act("heal", then.heal, self.second)
            self.act("heal", self.s.heal)
        self.say("waiting for status to be healthy")
        deadline = time.monotonic() + self.s.healthy_timeout_s
        ok, detail = wait_healthy(self.b.status, self.s.healthy_timeout_s, self.timing.poll_s, self.rec)
        if ok:
            self.rec.event("healthy", detail)
            self.wait_placed(deadline)
        else:
            self.error("DRILL-NOT-HEALED", f"not healthy {self.s.healthy_timeout_s:.0f} s after the heal: {detail}")
        time.sleep(self.s.settle_s)

    def wait_placed(self, deadline: float) -> None:
        """Until everything one node held before the fault is held by one node again (bounded by the
        heal's deadline). `status` is healthy once the agents report alive; the tenant's router and
        DHCP server come later, and the drill keeps watching until they do."""
        before = self.before
        if before is None:
            return
        wanted = [k for k in PLACED if len(set(before.held(k))) == 1]
        missing = wanted
        while wanted:
            try:
                now = placement(0.0, self.b.observe())
            except Exception:  # an observation that fails is "not yet"
                now = None
            if now is not None and now.error is None:
                missing = [k for k in wanted if len(set(now.held(k))) != 1]
                if not missing:
                    self.rec.event("placed", "everything held before the fault is held by one node again")
                    return
            if time.monotonic() >= deadline:
                break
            time.sleep(min(self.timing.poll_s, max(0.0, deadline - time.monotonic())))
        self.error("DRILL-NOT-PLACED", f"not held by one node again {self.s.healthy_timeout_s:.0f} s after the heal: "
                                       f"{', '.join(missing)}")

    def hold(self, seconds: float) -> None:
        """The time the fault lasts: `seconds`, or less once the scenario's `heal_when` file is there."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.s.heal_when is not None and Path(self.s.heal_when).exists():
                self.rec.event("note", f"{self.s.heal_when} is there: healing {left:.1f} s before the hold's end")
                return
            time.sleep(min(left, HEAL_WHEN_POLL_S) if self.s.heal_when is not None else left)

    def strike_again(self) -> None:
        """The scenario's second fault, on a target seen now (never the first one again)."""
        then = self.s.then
        assert then is not None
        try:
            now = world(self.b, dataclasses.replace(self.s, target=then.target))
            node = resolve(then.target, now)
            if node == self.target:
                raise SelectorError(f"{then.target} is still {node} {then.after_s:g} s after the first fault")
        except (SelectorError, DrillAborted) as exc:
            self.error("DRILL-SECOND-FAULT", f"second fault not struck: {exc}", event=True)
            return
        self.second = node
        self.act("fault", then.fault, node)

    def finish(self, threads: list[threading.Thread]) -> None:
        self.rec.event("stop")
        self.stop.set()
        deadline = time.monotonic() + self.timing.join_timeout_s
        for t in threads:
            t.join(timeout=max(0.1, deadline - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            self.error("DRILL-WORKLOAD-STUCK", f"still running after stop: {', '.join(stuck)}")

    def verify(self) -> None:
        for w in self.workloads:
            try:
                w.verify(self.rec)
            except Exception as exc:  # the score then says "unreadable"
                self.error("DRILL-VERIFY-FAILED", f"workload {w.name} could not verify: {short_error(exc)}")


def run_drill(scenario: Scenario, b: Bindings, workloads: Sequence[Workload], *, index: int = 0,
              timing: Timing = Timing(), say: Say = _quiet) -> DrillRun:
    d = Drill(scenario, b, workloads, timing, say)
    d.precheck()
    say(f"{scenario.name}: target {d.target}" if d.target else f"{scenario.name}: no fault, no target")
    threads = d.start()
    try:
        d.phases()
    finally:
        d.finish(threads)
    d.verify()
    rec = d.rec.snapshot()
    return DrillRun(scenario, index, d.target, rec, score(rec), tuple(d.errors))


def run_series(scenario: Scenario, b: Bindings, make_workloads: Callable[[int], Sequence[Workload]],
               repeat: int = 1, *, timing: Timing = Timing(), say: Say = _quiet) -> DrillSeries:
    """`--repeat N`: N runs, each with fresh workloads (own ids), then min/median/max per figure."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    runs = []
    for i in range(repeat):
        say(f"{scenario.name}: run {i + 1}/{repeat}")
        runs.append(run_drill(scenario, b, make_workloads(i), index=i, timing=timing, say=say))
    return DrillSeries(scenario, tuple(runs), aggregate([r.figures() for r in runs]))
