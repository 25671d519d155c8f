"""The watcher: where the VIP, the agent group and the Galera writer are, sampled through the lab."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from hastack.drills.samples import PLACED, Placement, Recorder, short_error

# -- the watcher ---------------------------------------------------------------------------------------------

Observe = Callable[[], Mapping[str, Any]]
"""The lab's view of placements: {"vip": [nodes], "agents": [nodes], "galera_writer": node | None},
and where the lab can see them, "routers": [nodes] and "dhcp": [nodes] (see `drills.observe`)."""


def placement(t: float, seen: Mapping[str, Any]) -> Placement:
    """Check the observer's answer: a malformed one is an error sample, not a silent empty list."""
    lists, writer = {k: seen.get(k, []) for k in PLACED}, seen.get("galera_writer")
    if not all(isinstance(x, list | tuple) and all(isinstance(n, str) for n in x) for x in lists.values()):
        return Placement(t, error=f"malformed observation: {dict(seen)!r}"[:200])
    if writer is not None and not isinstance(writer, str):
        return Placement(t, error=f"malformed galera_writer: {writer!r}"[:200])
    vip, agents, routers, dhcp = (tuple(sorted(lists[k])) for k in PLACED)
    return Placement(t, vip, agents, writer, routers=routers, dhcp=dhcp)


class Sampler:
    """Samples placements `rate` times a second through the lab's `observe` callable.

    A sample is stamped at the middle of the call (the observation is somewhere inside it). The loop
    is closed: an observer slower than 1/rate lowers the rate, it never piles calls up.
    """

    name = "watcher"

    def __init__(self, observe: Observe, rate: float = 10.0) -> None:
        self.observe, self.rate = observe, rate

    def prepare(self) -> None:
        pass

    def sample(self, rec: Recorder) -> Placement:
        began = rec.now()
        try:
            seen = self.observe()
        except Exception as exc:  # an unreachable node is data
            p = Placement((began + rec.now()) / 2, error=short_error(exc))
        else:
            p = placement((began + rec.now()) / 2, seen)
        rec.place(p)
        return p

    def run(self, rec: Recorder, stop: threading.Event, duration: float) -> None:
        interval, start = 1.0 / self.rate, time.monotonic()
        for i in range(int(duration * self.rate) + 1):
            delay = start + i * interval - time.monotonic()
            if (delay > 0 and stop.wait(delay)) or stop.is_set() or time.monotonic() - start >= duration:
                return
            self.sample(rec)

    def verify(self, rec: Recorder) -> None:
        pass
