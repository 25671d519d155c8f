"""What a drill observes: operations, placements, events and final checks, on one clock.

Why it looks like this:
- Every timestamp is seconds since the recorder started, read from a monotonic clock: a drill
  measures gaps of a few hundred milliseconds, and a wall clock stepped by NTP in the middle of a
  run would invent or hide one. The wall-clock time of the start is kept once, for the report.
- Workloads run in threads (PyMySQL, pika and httpx's sync client block), the watcher in another,
  the runner in the main one; all append here. One lock around list appends is enough: the critical
  section is a few instructions, so an asyncio coroutine may call the recorder too without blocking
  its loop for any noticeable time.
- Samples are frozen records with no behaviour: scoring is pure functions over a `Recording`
  (an immutable snapshot), so the same code scores a live run, a JSON report read back, or a
  synthetic stream in a unit test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

STREAMS = ("vip", "keystone", "networks", "db", "publish", "consume", "rpc_call", "rpc_cast")
"""The operation streams the workloads record (the watcher records `Placement`s instead)."""
PER_CLIENT = ("rpc_call", "rpc_cast")
"""Streams of several independent clients (`Sample.node` names the client): their gap is the worst
client's, since each client has its own broker connections (the one whose broker died is the one
that waits, while the others go on)."""

SKIPPED = "skipped"
"""Flag of an operation that was due but not started because every worker was still busy
(the previous ones hang): it shows the client stalled, it is not a server's error."""
REDELIVERED = "redelivered"
STALE = "stale"
"""Flag of a message consumed by this run but published by an earlier one (left in the queue)."""

PLACED = ("vip", "agents", "routers", "dhcp")
"""The watcher's per-sample lists of nodes (each holds one thing: at most one node should)."""

MAX_ERROR_CHARS = 200
_T = TypeVar("_T", "Sample", "Placement", "Event")


@dataclass(frozen=True, slots=True)
class Sample:
    """One operation of a workload, recorded when it completed (or failed)."""

    stream: str
    t: float
    """Completion time: for a write, the moment its commit or confirm was acknowledged."""
    ok: bool
    latency: float = 0.0
    id: str | None = None
    node: str | None = None
    """The node that served it, when the protocol says (Galera node name, broker address)."""
    error: str | None = None
    flag: str | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    """One observation of the watcher: who holds the VIP, where the agent group runs, the writer,
    and which network nodes serve tenants (a router's gateway address up, a DHCP server listening)."""

    t: float
    vip: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    writer: str | None = None
    error: str | None = None
    routers: tuple[str, ...] = ()
    dhcp: tuple[str, ...] = ()

    def held(self, kind: str) -> tuple[str, ...]:
        """The nodes holding one of the `PLACED` kinds in this observation."""
        if kind not in PLACED:
            raise KeyError(f"{kind!r} is not one of {PLACED}")
        nodes: tuple[str, ...] = getattr(self, kind)
        return nodes


@dataclass(frozen=True, slots=True)
class Event:
    """A mark on the timeline: start, fault, heal, status polls, healthy, stop, notes."""

    t: float
    kind: str
    text: str = ""
    node: str | None = None
    ok: bool | None = None


@dataclass(frozen=True)
class Recording:
    """An immutable snapshot of everything a run recorded."""

    started_wall: float
    samples: tuple[Sample, ...] = ()
    placements: tuple[Placement, ...] = ()
    events: tuple[Event, ...] = ()
    checks: Mapping[str, Any] = field(default_factory=dict)

    def stream(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.stream == name]

    def first_event(self, kind: str) -> Event | None:
        return next((e for e in self.events if e.kind == kind), None)

    def end(self) -> float:
        """The last recorded instant (the `stop` event when there is one)."""
        stop = self.first_event("stop")
        if stop is not None:
            return stop.t
        times = [s.t for s in self.samples] + [p.t for p in self.placements] + [e.t for e in self.events]
        return max(times, default=0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "started_wall": self.started_wall,
            "samples": [asdict(s) for s in self.samples],
            "placements": [asdict(p) for p in self.placements],
            "events": [asdict(e) for e in self.events],
            "checks": dict(self.checks),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Recording:
        return cls(
            started_wall=float(data.get("started_wall", 0.0)),
            samples=tuple(Sample(**s) for s in data.get("samples", [])),
            placements=tuple(Placement(**{**p, **{k: tuple(p.get(k, ())) for k in PLACED}})
                             for p in data.get("placements", [])),
            events=tuple(Event(**e) for e in data.get("events", [])),
            checks=dict(data.get("checks", {})),
        )


def short_error(exc: BaseException, limit: int = MAX_ERROR_CHARS) -> str:
    """`Kind: message`, one line and bounded: errors are data in the report, not tracebacks."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text[:limit]


class Recorder:
    """The thread-safe sink every workload, the watcher and the runner write to."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._t0 = clock()
        self.started_wall = wall()
        self._lock = threading.Lock()
        self._samples: list[Sample] = []
        self._placements: list[Placement] = []
        self._events: list[Event] = []
        self._checks: dict[str, Any] = {}

    def now(self) -> float:
        return self._clock() - self._t0

    def add(self, sample: Sample) -> Sample:
        with self._lock:
            self._samples.append(sample)
        return sample

    def op(self, stream: str, started: float, ok: bool, *, id: str | None = None, node: str | None = None,
           error: str | None = None, flag: str | None = None) -> Sample:
        """Record an operation that began at `started` (from `now()`) and completes now."""
        t = self.now()
        return self.add(Sample(stream, t, ok, max(0.0, t - started), id, node, error, flag))

    def place(self, placement: Placement) -> None:
        with self._lock:
            self._placements.append(placement)

    def event(self, kind: str, text: str = "", node: str | None = None, ok: bool | None = None) -> Event:
        ev = Event(self.now(), kind, text, node, ok)
        with self._lock:
            self._events.append(ev)
        return ev

    def check(self, name: str, value: Any) -> None:
        """A final check's result (e.g. the ids each Galera node holds); must be JSON-serialisable."""
        with self._lock:
            self._checks[name] = value

    def count(self, stream: str) -> int:
        with self._lock:
            return sum(1 for s in self._samples if s.stream == stream)

    def snapshot(self) -> Recording:
        with self._lock:
            return Recording(self.started_wall, tuple(_by_time(self._samples)),
                             tuple(_by_time(self._placements)), tuple(_by_time(self._events)),
                             dict(self._checks))


def _by_time(items: Sequence[_T]) -> list[_T]:
    """Threads append in completion order, which is nearly but not exactly time order."""
    return sorted(items, key=lambda x: x.t)
