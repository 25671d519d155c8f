"""A fault campaign: many drills in a row, each a fault drawn from a mix of nemeses, every one checked.

Why it looks like this:
- One cycle is one drill (runner.run_drill): the same workloads, watcher, heal and scoring as
  `hastack drill`, so what a campaign proves is what a drill measures, not a second implementation.
- The order is drawn from a seed: `schedule` deals the nemeses in shuffled rounds, so 100 cycles
  over 12 nemeses give each one 8 or 9 cycles, and the same seed replays the same order.
- A cycle *violates* when something was lost or seen twice where only one may be: an acknowledged
  write missing on a Galera node (or the nodes unreadable), a confirmed message never consumed, a
  split-brain sample (the VIP or the agent group on two nodes), `status` not healthy within the
  scenario's bound after the heal, or a fault/heal action that failed. Duplicated deliveries are
  counted and reported, not violations: with publisher confirms and redelivery, at-least-once is
  the promise. Gap figures are reported, never judged here (that is `bench`'s job).
- The campaign stops at the first violation, keeps that cycle's whole recording and timeline, and
  asks the caller to keep the daemons' logs of its window (`keep`); a cycle that could not even
  start (the lab unhealthy before it) stops the campaign the same way.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hastack.drills.runner import Bindings, DrillAborted, DrillRun, Say, Timing, run_drill
from hastack.drills.scenarios import Scenario
from hastack.drills.scoring import Figure
from hastack.drills.workloads import Workload
from hastack.reports import Report

NEMESES: tuple[str, ...] = (
    "power-off-vip-writer", "power-off-other-controller", "power-off-active-network", "power-off-passive-network",
    "cut-vip-writer", "cut-active-network", "partition-vip-controller", "partition-network-nodes",
    "kill-galera-writer", "kill-queue-leader", "kill-haproxy-vip", "kill-keepalived-vip",
    "kill-corosync-active-network", "kill-pacemaker-active-network", "kill-memcached",
    "stop-galera-writer", "stop-keepalived-vip", "stop-dhcp-agent-active-network", "kill-galera-writer-twice",
    "power-off-all-controllers",
)
"""The default mix: every kind of fault the issue names, on every role that matters."""


def schedule(nemeses: Sequence[str], cycles: int, seed: int) -> list[str]:
    """`cycles` nemesis names: shuffled rounds of the whole mix (each appears floor or ceil of
    cycles/len times), never the same one twice in a row across rounds when there is a choice."""
    if not nemeses:
        raise ValueError("no nemesis to schedule")
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < cycles:
        deal = list(nemeses)
        rng.shuffle(deal)
        if out and len(deal) > 1 and deal[0] == out[-1]:
            deal[0], deal[1] = deal[1], deal[0]
        out += deal
    return out[:cycles]


def violations(figures: Mapping[str, Figure], errors: Sequence[Report]) -> list[str]:
    """What makes a cycle fail, in words (empty: the cycle kept every promise)."""
    out = []
    lost = figures.get("db_lost")
    if lost is None:
        out.append("db: no Galera node could be read back to check the acknowledged writes")
    elif lost:
        out.append(f"db: {lost:g} acknowledged write(s) missing on a Galera node")
    if figures.get("messages_lost"):
        out.append(f"broker: {figures['messages_lost']:g} confirmed message(s) never consumed")
    if figures.get("rpc_casts_lost"):
        out.append(f"rpc: {figures['rpc_casts_lost']:g} confirmed cast(s) the server never received")
    if figures.get("split_brain_samples"):
        out.append(f"split brain: {figures['split_brain_samples']:g} sample(s) with the VIP, the agent group, a "
                   "router's gateway or a DHCP server on two nodes")
    if figures.get("heal_to_healthy_s") is None:
        out.append("status: not healthy within the bound after the heal")
    out += [f"run: [{e.code}] {e.message}" for e in errors]
    return out


@dataclass(frozen=True)
class Cycle:
    index: int
    nemesis: str
    target: str
    started_wall: float
    seconds: float
    figures: Mapping[str, Figure] = field(default_factory=dict)
    errors: tuple[Report, ...] = ()
    violations: tuple[str, ...] = ()
    aborted: str = ""
    """Why the cycle did not start (the lab was not healthy or had no valid target)."""

    @property
    def ok(self) -> bool:
        return not self.violations and not self.aborted

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "nemesis": self.nemesis, "target": self.target,
                "started_wall": round(self.started_wall, 3), "seconds": round(self.seconds, 1),
                "ok": self.ok, "violations": list(self.violations), "aborted": self.aborted,
                "errors": [e.to_json() for e in self.errors], "figures": dict(self.figures)}


@dataclass(frozen=True)
class Campaign:
    seed: int
    planned: tuple[str, ...]
    cycles: tuple[Cycle, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.cycles) and len(self.cycles) == len(self.planned)

    def first_failure(self) -> Cycle | None:
        return next((c for c in self.cycles if not c.ok), None)

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "planned": list(self.planned), "ran": len(self.cycles), "ok": self.ok,
                "summary": [r.to_json() for r in summary(self.cycles)],
                "cycles": [c.to_json() for c in self.cycles]}


@dataclass(frozen=True)
class Row:
    """One nemesis over the whole campaign (the README's table)."""

    nemesis: str
    cycles: int
    lost_writes: float
    lost_messages: float
    duplicates: float
    split_brain: float
    heal_median_s: float | None
    heal_worst_s: float | None
    violations: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _total(cycles: Sequence[Cycle], figure: str) -> float:
    return float(sum(v for c in cycles if isinstance(v := c.figures.get(figure), int | float)))


def summary(cycles: Sequence[Cycle]) -> list[Row]:
    rows = []
    for name in dict.fromkeys(c.nemesis for c in cycles):
        mine = [c for c in cycles if c.nemesis == name]
        heals = [float(h) for c in mine if isinstance(h := c.figures.get("heal_to_healthy_s"), int | float)]
        rows.append(Row(name, len(mine), _total(mine, "db_lost"), _total(mine, "messages_lost"),
                        _total(mine, "messages_duplicated"), _total(mine, "split_brain_samples"),
                        statistics.median(heals) if heals else None, max(heals) if heals else None,
                        sum(1 for c in mine if not c.ok)))
    return sorted(rows, key=lambda r: r.nemesis)


Keep = Callable[[Cycle, DrillRun | None], None]
"""Called with every cycle once it is scored (and its run, when it ran): write the evidence."""


def run_campaign(scenarios: Mapping[str, Scenario], b: Bindings, make_workloads: Callable[[int], Sequence[Workload]],
                 *, cycles: int, seed: int, nemeses: Sequence[str] = NEMESES, keep: Keep | None = None,
                 timing: Timing | None = None, say: Say = lambda _: None) -> Campaign:
    unknown = [n for n in nemeses if n not in scenarios]
    if unknown:
        raise KeyError(f"unknown nemesis {', '.join(unknown)}")
    plan = schedule(nemeses, cycles, seed)
    done: list[Cycle] = []
    for i, name in enumerate(plan):
        say(f"cycle {i + 1}/{len(plan)}: {name}")
        wall, t0 = time.time(), time.monotonic()
        run: DrillRun | None = None
        try:
            run = run_drill(scenarios[name], b, make_workloads(i), index=i, timing=timing or Timing(), say=say)
        except DrillAborted as exc:
            cycle = Cycle(i, name, "", wall, time.monotonic() - t0, aborted=str(exc))
        else:
            figures = run.figures()
            cycle = Cycle(i, name, run.target, wall, time.monotonic() - t0, figures, run.errors,
                          tuple(violations(figures, run.errors)))
        done.append(cycle)
        if keep is not None:
            keep(cycle, run)
        if not cycle.ok:
            say(f"cycle {i + 1} failed: {'; '.join(cycle.violations) or cycle.aborted}")
            break
    return Campaign(seed, tuple(plan), tuple(done))
