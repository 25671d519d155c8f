"""memcached's own answer to `stats` (asked over TCP by the status bundle: `components/memcached.py` has the
port and address)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hastack.transport.base import Result


@dataclass(frozen=True)
class MemcachedStats:
    answering: bool
    stats: dict[str, str] = field(default_factory=dict)
    error: str = ""


def parse_memcached(r: Result) -> MemcachedStats:
    """`stats` answered with `STAT name value` lines and `END`; anything else: not answering."""
    if r.exit_status != 0:
        return MemcachedStats(False, error=(r.stderr.strip() or f"exit {r.exit_status}").splitlines()[0])
    stats = {}
    for line in r.stdout.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            stats[parts[1]] = parts[2]
    if "pid" not in stats:
        raise ValueError("no `STAT pid` line in memcached's answer")
    return MemcachedStats(True, stats)
