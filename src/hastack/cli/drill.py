"""`hastack drill` and `hastack bench`: bind the drills to the lab, status and deploy."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from pathlib import Path

from rich.console import Console

from hastack.components.base import Ctx
from hastack.drills import cli as drills
from hastack.drills.campaign import NEMESES
from hastack.drills.runner import Bindings
from hastack.lab import Lab
from hastack.status import StatusSession
from hastack.topology.load import Loaded
from hastack.topology.model import Topology
from hastack.transport.ssh import connect_all


def _bindings(loaded: Loaded, lab: Lab, topo: Topology, stack: contextlib.ExitStack) -> Bindings:
    """The lab's bindings for `topo` (the tuned topology in bench): status judges that topology, with
    connections kept across its polls and closed when `stack` closes."""
    ctx = _ctx(loaded)
    status = stack.enter_context(StatusSession(topo, loaded.path))
    return drills.lab_bindings(lab, topo, ctx.secrets, status, lambda: lab.state.cuts,
                               recover=lambda: _recover(loaded))


def _recover(loaded: Loaded) -> int:
    """`hastack recover all --yes`, its output kept and shown only when it fails."""
    from hastack.cli.deploy import run_recover

    buf = io.StringIO()
    code = run_recover(loaded, Console(file=buf, width=200), "all", dry_run=False, yes=True, lost=[])
    if code != 0:
        raise RuntimeError(f"hastack recover all exited {code}: {buf.getvalue()[-1500:]}")
    return code


def _ctx(loaded: Loaded) -> Ctx:
    from hastack.render import context

    return context(loaded)


def run_drill(loaded: Loaded, console: Console, scenario: str | None, repeat: int, report_dir: Path | None,
              hold_s: float | None = None, heal_when: Path | None = None) -> int:
    if scenario is None:
        console.print(drills.scenarios_table())
        return 0
    ctx = _ctx(loaded)
    lab = Lab.load(loaded.path)
    with contextlib.ExitStack() as stack:
        return drills.drill(ctx.topo, ctx.secrets, _bindings(loaded, lab, ctx.topo, stack), scenario, repeat=repeat,
                            report_dir=report_dir, out=console, hold_s=hold_s, heal_when=heal_when)


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

    with contextlib.ExitStack() as stack:
        return drills.bench(ctx.topo, ctx.secrets, lambda topo: _bindings(loaded, lab, topo, stack), deploy_as,
                            scenarios, repeat=repeat, report_dir=report_dir, out=console)


STATE_SCRIPT = r"""journalctl --since "$1" --until "$2" --no-pager -o short-iso-precise | tail -n 20000
echo "== cluster state at $(date -u +%FT%TZ)"
command -v crm_mon >/dev/null && crm_mon -1 2>&1 | head -n 60
command -v mysql >/dev/null && mysql -N -e "SHOW GLOBAL STATUS WHERE Variable_name IN
  ('wsrep_cluster_status','wsrep_cluster_size','wsrep_local_state_comment','wsrep_cluster_state_uuid',
   'wsrep_last_committed','wsrep_ready')" 2>&1
command -v rabbitmqctl >/dev/null && rabbitmqctl -q cluster_status 2>&1 | head -n 40
ip -o -4 addr show | awk '{print $2, $4}'
true
"""
"""A failed cycle's evidence from one node: its journal of the window, then what its clusters say now."""


def run_campaign(loaded: Loaded, console: Console, cycles: int, seed: int, nemeses: list[str] | None,
                 report_dir: Path) -> int:
    ctx = _ctx(loaded)
    lab = Lab.load(loaded.path)

    def logs(since: float, until: float, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for n in ctx.topo.nodes:
            try:
                res = lab.run(n.name, ["sh", "-c", STATE_SCRIPT, "sh", f"@{since:.0f}", f"@{until:.0f}"], timeout=90)
                text = res.stdout + res.stderr
            except Exception as exc:  # a node that is off or hung: say so in its file
                text = f"could not read {n.name}: {exc}\n"
            (directory / f"{n.name}.log").write_text(text)

    with contextlib.ExitStack() as stack:
        return drills.campaign(ctx.topo, ctx.secrets, _bindings(loaded, lab, ctx.topo, stack), cycles=cycles,
                               seed=seed, nemeses=nemeses or NEMESES, report_dir=report_dir, logs=logs, out=console)
