"""A synthetic drill run, shaped like a real power cut of the VIP + writer controller.

For looking at the report without a lab (`hastack.drills.cli.demo_report`) and for tests. The
numbers follow the lab notes (0.3 s VIP move, ~3.3 s Galera eviction through HAProxy), but the run
is made up: nothing here was measured.
"""

from __future__ import annotations

from hastack.drills.runner import DrillRun
from hastack.drills.samples import SKIPPED, Event, Placement, Recording, Sample
from hastack.drills.scenarios import by_name
from hastack.drills.scoring import score

BASE = 1_700_000_000.0


def _stream(name: str, rate: float, end: float, outages: list[tuple[float, float]], prefix: str,
            fail_every: float = 0.5) -> list[Sample]:
    """Successes at `rate`; inside an outage, a failure every `fail_every` s instead."""
    out: list[Sample] = []
    i, t = 0, 0.05
    while t < end:
        down = next(((a, b) for a, b in outages if a <= t < b), None)
        if down is None:
            out.append(Sample(name, round(t, 4), True, 0.004, f"{prefix}{i}", "ctl-1"))
        elif (t - down[0]) % fail_every < 1 / rate:
            out.append(Sample(name, round(t, 4), False, fail_every, f"{prefix}{i}", None, "TimeoutError: timed out"))
        i += 1
        t += 1 / rate
    return out


def _placements(end: float, split: bool) -> list[Placement]:
    out = []
    t = 0.0
    while t < end:
        vip: tuple[str, ...] = ("ctl-1",) if t < 5.3 else ("ctl-2",)
        if split and 40.0 <= t < 40.25:
            vip = ("ctl-1", "ctl-2")
        writer = "ctl-1" if t < 8.3 or t >= 44.0 else ("ctl-2" if t >= 8.4 else None)
        if 25.0 <= t < 29.0:
            out.append(Placement(round(t, 3), error="TimeoutError: ctl-1 did not answer"))
        else:
            out.append(Placement(round(t, 3), vip, ("net-1",), writer))
        t += 0.1
    return out


def run(split: bool = False) -> DrillRun:
    end = 57.0
    samples = [
        *_stream("vip", 50, end, [(5.0, 5.31)], "demo-v", 0.25),
        *_stream("keystone", 10, end, [(5.0, 6.3)], "demo-k", 2.0),
        *_stream("db", 20, end, [(5.0, 8.4), (44.0, 44.45)], "demo-d", 2.0),
        *_stream("publish", 20, end, [(5.0, 5.55)], "demo-m", 1.0),
    ]
    samples += [Sample("consume", s.t + 0.01, True, 0.0, s.id, "10.77.0.12") for s in samples
                if s.stream == "publish" and s.ok]
    samples.append(Sample("keystone", 5.6, False, 0.0, "demo-k-skip", error="all 4 workers busy", flag=SKIPPED))
    events = [Event(0.0, "start", "power off the controller holding the VIP and the Galera writer", "ctl-1"),
              Event(5.0, "fault", "power off ctl-1", "ctl-1"), Event(25.0, "heal", "power on ctl-1", "ctl-1")]
    events += [Event(25.0 + k * 2.0, "status", "galera: ctl-1 joining", ok=False) for k in range(11)]
    events += [Event(47.0, "status", "healthy", ok=True), Event(47.0, "healthy", "healthy"), Event(end, "stop")]
    acked = [s.id for s in samples if s.stream == "db" and s.ok and s.id]
    present: dict[str, list[str] | None] = {n: list(acked) for n in ("ctl-1", "ctl-2", "ctl-3")}
    rec = Recording(BASE, tuple(sorted(samples, key=lambda s: s.t)), tuple(_placements(end, split)),
                    tuple(events), {"db_present": present, "consume_drained": True})
    return DrillRun(by_name("power-off-vip-writer"), 0, "ctl-1", rec, score(rec))
