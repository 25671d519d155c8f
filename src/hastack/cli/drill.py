"""`hastack drill` and `hastack bench`: bind the drills to the lab, status and deploy."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from rich.console import Console

from hastack.components.base import Ctx
from hastack.drills import cli as drills
from hastack.drills.runner import Bindings
from hastack.lab import Lab
from hastack.status import healthy
from hastack.topology.load import Loaded
from hastack.topology.model import Topology
from hastack.transport.ssh import connect_all


def _bindings(loaded: Loaded, lab: Lab, topo: Topology) -> Bindings:
    ctx = _ctx(loaded)
    return drills.lab_bindings(lab, topo, ctx.secrets, lambda: healthy(loaded.path), lambda: lab.state.cuts)


def _ctx(loaded: Loaded) -> Ctx:
    from hastack.render import context

    return context(loaded)


def run_drill(loaded: Loaded, console: Console, scenario: str | None, repeat: int, report_dir: Path | None,
              hold_s: float | None = None) -> int:
    if scenario is None:
        console.print(drills.scenarios_table())
        return 0
    ctx = _ctx(loaded)
    lab = Lab.load(loaded.path)
    return drills.drill(ctx.topo, ctx.secrets, _bindings(loaded, lab, ctx.topo), scenario, repeat=repeat,
                        report_dir=report_dir, out=console, hold_s=hold_s)


def run_bench(loaded: Loaded, console: Console, scenarios: list[str], repeat: int, report_dir: Path | None) -> int:
    """Both tunings in one run: the lab is re-deployed with the reference profile, drilled, then
    re-deployed as the topology says and drilled again."""
    from hastack.cli.deploy import show_event
    from hastack.deploy.run import deploy

    ctx = _ctx(loaded)
    lab = Lab.load(loaded.path)

    def deploy_as(topo: Topology) -> None:
        tuned = Ctx(topo, ctx.secrets)

        async def go() -> None:
            transports = await connect_all(topo, loaded.path)
            try:
                await deploy(tuned, transports, show_event(console, time.monotonic()))  # type: ignore[arg-type]
            finally:
                await asyncio.gather(*(t.close() for t in transports.values()), return_exceptions=True)

        asyncio.run(go())

    return drills.bench(ctx.topo, ctx.secrets, lambda topo: _bindings(loaded, lab, topo), deploy_as,
                        scenarios, repeat=repeat, report_dir=report_dir, out=console)
