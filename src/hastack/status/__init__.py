"""`hastack status`: read every layer of a deployed topology, judge it, say what to do next.

    state = await read_cluster(topo, topology_file) # read-only: one SSH command per host + the VIP
    verdict = evaluate(state)                       # pure rules: findings, exit code
    ok, summary = healthy("examples/seed.yml")      # one round, fresh connections
    with StatusSession(topo, path) as status:       # for drills: connections kept across polls
        ok, summary = status()

Modules: bundle (the one command per host), probes (what each role is asked, and the readers),
client (the VIP as a client sees it), collect (-> ClusterState), model (ClusterState),
verdict + rules* (findings, exit codes), render (table, JSON, Prometheus).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from pathlib import Path

from hastack.status.collect import Collector, read_cluster
from hastack.status.model import ClusterState
from hastack.status.rules import evaluate
from hastack.status.verdict import Finding, Level, Verdict
from hastack.topology.model import Topology

__all__ = ["ClusterState", "Collector", "Finding", "Level", "StatusSession", "Verdict", "evaluate", "healthy",
           "healthy_async", "read_cluster"]


class StatusSession:
    """The drills' `status` callable, `(healthy, summary)`: `hastack status` of the topology being
    drilled (the tuned one in `bench`, not the file's), with one Collector, and so one SSH connection per
    host, kept across polls. A connection that breaks (a node powered off) is dropped and made again
    on the next poll. Blocking and thread-safe: the collector lives on its own event-loop thread,
    one poll at a time. `close()` ends the connections and the thread."""

    def __init__(self, topo: Topology, topology_file: str | Path, *,
                 collector: Callable[[], Collector] | None = None) -> None:
        self._make = collector or (lambda: Collector(topo, Path(topology_file)))
        self._collector: Collector | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="status-session", daemon=True)
        self._thread.start()
        self._lock = threading.Lock()

    async def _poll(self) -> tuple[bool, str]:
        if self._collector is None:
            self._collector = self._make()
        verdict = evaluate(await self._collector.collect())
        return verdict.healthy, verdict.summary()

    def __call__(self) -> tuple[bool, str]:
        with self._lock:
            if self._loop.is_closed():
                raise RuntimeError("status session closed")
            return asyncio.run_coroutine_threadsafe(self._poll(), self._loop).result()

    def close(self) -> None:
        with self._lock:
            if self._loop.is_closed():
                return
            if self._collector is not None:
                asyncio.run_coroutine_threadsafe(self._collector.close(), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def __enter__(self) -> StatusSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def healthy_async(topology_file: str | Path) -> tuple[bool, str]:
    """(healthy, one-line summary); a topology that cannot be loaded is (False, why)."""
    from hastack.topology.load import load

    path = Path(topology_file)
    loaded = load(path)
    if loaded.topology is None or not loaded.ok:
        first = next((r.render() for r in loaded.reports if r.is_error), "invalid topology")
        return False, f"unknown: {first}"
    verdict = evaluate(await read_cluster(loaded.topology, path))
    return verdict.healthy, verdict.summary()


def healthy(topology_file: str | Path) -> tuple[bool, str]:
    """The drills' `status` callable: blocking, read-only, bounded by the probes' timeouts.

    Callable from a thread that already runs an event loop too (it then runs in a worker thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(healthy_async(topology_file))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, healthy_async(topology_file)).result()
