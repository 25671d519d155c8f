"""`hastack status`: read every layer of a deployed topology, judge it, say what to do next.

    state = await read_cluster(topo, topology_file) # read-only: one SSH command per host + the VIP
    verdict = evaluate(state)                       # pure rules: findings, exit code
    ok, summary = healthy("examples/seed.yml")      # for drills

Modules: bundle (the one command per host), probes (what each role is asked, and the readers),
client (the VIP as a client sees it), collect (-> ClusterState), model (ClusterState),
verdict + rules* (findings, exit codes), render (table, JSON, Prometheus).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path

from hastack.status.collect import Collector, read_cluster
from hastack.status.model import ClusterState
from hastack.status.rules import evaluate
from hastack.status.verdict import Finding, Level, Verdict

__all__ = ["ClusterState", "Collector", "Finding", "Level", "Verdict", "evaluate", "healthy", "healthy_async",
           "read_cluster"]


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
