"""Bounded polling: every wait for a cluster state has a deadline and says what it last saw."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class GateTimeout(Exception):
    def __init__(self, what: str, seconds: float, last: object):
        super().__init__(f"gave up after {seconds:.0f}s waiting for {what}; last seen: {last}")
        self.what, self.seconds, self.last = what, seconds, last


async def until(probe: Callable[[], Awaitable[tuple[bool, object]]], *, what: str, timeout: float,
                interval: float = 0.5) -> object:
    """Call `probe` until it returns (True, value); return the value, or raise GateTimeout.

    The probe returns its observation either way so that a timeout can say what it saw last.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            done, last = await probe()
        except Exception as exc:  # a probe failing (host down, tool not ready) is just "not yet"
            done, last = False, f"{type(exc).__name__}: {exc}"
        if done:
            return last
        if time.monotonic() >= deadline:
            raise GateTimeout(what, timeout, last)
        await asyncio.sleep(interval)
