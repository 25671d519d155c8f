"""`hastack status`: read every layer, print the verdict as tables, JSON or Prometheus text.

Read-only. The exit code is the verdict's (0 healthy, 1 degraded, 2 down, 3 unknown; see
hastack.status.verdict). `--watch N` keeps the connections open and refreshes every N seconds
until Ctrl-C, then exits with the last verdict's code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from rich.console import Console

from hastack.status.collect import Collector
from hastack.status.model import ClusterState
from hastack.status.render import tables, to_json, to_prometheus
from hastack.status.rules import evaluate
from hastack.status.verdict import Verdict
from hastack.topology.load import Loaded


def _print(console: Console, state: ClusterState, verdict: Verdict, as_json: bool, prometheus: bool) -> None:
    if as_json:
        console.print_json(json.dumps(to_json(state, verdict)))
    elif prometheus:
        console.file.write(to_prometheus(state, verdict))
        console.file.flush()
    else:
        console.print(tables(state, verdict))


async def _once(loaded: Loaded, console: Console, as_json: bool, prometheus: bool) -> int:
    assert loaded.topology is not None
    async with Collector(loaded.topology, loaded.path) as c:
        state = await c.collect()
    verdict = evaluate(state)
    _print(console, state, verdict, as_json, prometheus)
    return verdict.exit_code


async def _watch(loaded: Loaded, console: Console, every: float, last: list[int]) -> None:
    """Refresh forever; `last` holds the latest exit code for when Ctrl-C ends it."""
    from rich.live import Live

    assert loaded.topology is not None
    async with Collector(loaded.topology, loaded.path) as c:
        state = await c.collect()
        verdict = evaluate(state)
        last.append(verdict.exit_code)
        with Live(tables(state, verdict), console=console, auto_refresh=False) as live:
            while True:
                await asyncio.sleep(max(0.0, every - state.seconds))
                state = await c.collect()
                verdict = evaluate(state)
                last.append(verdict.exit_code)
                live.update(tables(state, verdict), refresh=True)


def run_status(loaded: Loaded, console: Console, as_json: bool = False, watch: float | None = None,
               prometheus: bool = False) -> int:
    """The `hastack status` command: returns the exit code."""
    if watch is None:
        return asyncio.run(_once(loaded, console, as_json, prometheus))
    last: list[int] = []
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_watch(loaded, console, watch, last))
    return last[-1] if last else 3
