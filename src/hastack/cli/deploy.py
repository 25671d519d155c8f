"""`hastack plan` and `hastack deploy`: render the library's events and results."""

from __future__ import annotations

import asyncio
import signal
import sys
import time

from rich.console import Console
from rich.table import Table

from hastack.deploy.engine import Event, Interrupted, StageFailed, StepFailed
from hastack.deploy.run import PlanResult, deploy, plan
from hastack.render import context
from hastack.topology.load import Loaded
from hastack.transport.ssh import connect_all

STYLE = {"stage": "bold cyan", "change": "yellow", "ok": "green", "fail": "red", "info": "dim", "step": ""}


def show_event(console: Console, t0: float) -> object:
    def emit(e: Event) -> None:
        where = f"{e.host}: " if e.host else ""
        console.print(f"[{time.monotonic() - t0:6.1f}s] [{e.stage}] {where}{e.message}",
                      style=STYLE[e.kind], markup=False, highlight=False)
    return emit


async def _close(transports: dict[str, object]) -> None:
    await asyncio.gather(*(t.close() for t in transports.values()), return_exceptions=True)  # type: ignore[attr-defined]


def run_plan(loaded: Loaded, console: Console) -> int:
    ctx = context(loaded)

    async def go() -> PlanResult:
        transports = await connect_all(ctx.topo, loaded.path)
        try:
            return await plan(ctx, transports)
        finally:
            await _close(dict(transports))

    result = asyncio.run(go())
    for host, hp in result.hosts.items():
        changed = hp.changed_files
        console.print(f"[bold]{host}[/]: {len(changed)} file(s) to change, {len(hp.packages)} package(s) to "
                      f"install, {len(hp.stopped)} unit(s) to start")
        for c in changed:
            console.print(f"  ~ {c.summary()}", markup=False)
            if c.file.path in hp.diffs:
                console.print(hp.diffs[c.file.path], markup=False, highlight=False)
        for p in hp.packages:
            console.print(f"  + package {p}", markup=False)
        for u in hp.stopped:
            console.print(f"  > start {u}", markup=False)
        for u in sorted(hp.restarts):
            console.print(f"  ↻ restart {u} (rolling)", markup=False)
    for host, msg in result.errors.items():
        console.print(f"[red]{host}: cannot read: {msg}[/]")
    if result.new_secrets:
        console.print(f"{len(result.new_secrets)} secret(s) to generate ({', '.join(result.new_secrets[:6])}"
                      f"{', ...' if len(result.new_secrets) > 6 else ''}): deploy creates them, the plan wrote none",
                      markup=False, highlight=False)
    total = sum(len(h.changed_files) + len(h.packages) + len(h.stopped) for h in result.hosts.values())
    console.print(f"plan: {total} change(s); nothing was changed")
    return 3 if result.errors else 0


def run_deploy(loaded: Loaded, console: Console, only: list[str] | None) -> int:
    ctx = context(loaded)
    t0 = time.monotonic()
    emit = show_event(console, t0)

    async def go() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        transports = await connect_all(ctx.topo, loaded.path)
        try:
            res = await deploy(ctx, transports, emit, only, stop)  # type: ignore[arg-type]
        except StageFailed as exc:
            for f in exc.failures:
                console.print(f.render(), style="red", markup=False, highlight=False)
            console.print(f"stage {exc.stage} failed; later stages did not run. Fix the cause and run deploy again: "
                          "it continues from where it stopped.", style="red")
            return 1
        except Interrupted as exc:
            console.print(f"interrupted: {exc}", style="yellow")
            return 130
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            await _close(dict(transports))
        table = Table(title="deploy stages")
        for col in ("stage", "seconds", "changes"):
            table.add_column(col)
        for t in res.timings:
            table.add_row(t.name, f"{t.seconds:.1f}", str(t.changes))
        console.print(table)
        console.print(f"deploy done in {time.monotonic() - t0:.1f}s: {res.changes} changed")
        return 0

    return asyncio.run(go())


def run_recover(loaded: Loaded, console: Console, what: str, *, dry_run: bool, yes: bool, lost: list[str]) -> int:
    from hastack.components.registry import desired
    from hastack.deploy.engine import Deploy
    from hastack.recover.run import recover

    ctx = context(loaded)
    t0 = time.monotonic()

    def show(lines: list[str]) -> None:
        for line in lines:
            console.print(line, markup=False, highlight=False)

    def confirm(lines: list[str]) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            console.print("not confirmed: run again with --yes to carry out this plan", style="yellow")
            return False
        return console.input("carry out this plan? [y/N] ").strip().lower() in ("y", "yes")

    async def go() -> int:
        transports = await connect_all(ctx.topo, loaded.path)
        d = Deploy(ctx.topo, desired(ctx), transports, ctx.secrets, show_event(console, t0))  # type: ignore[arg-type]
        try:
            done = await recover(d, what, lost=lost, dry_run=dry_run, confirm=confirm, show=show)
        except (StageFailed, StepFailed) as exc:
            failures = exc.failures if isinstance(exc, StageFailed) else [exc]
            for f in failures:
                console.print(f.render(), style="red", markup=False, highlight=False)
            return 1
        finally:
            await _close(dict(transports))
        if dry_run:
            console.print("dry run: nothing was changed")
            return 0
        if done:
            console.print(f"recover {what} done in {time.monotonic() - t0:.1f}s: {d.changes} changed")
            return 0
        return 1

    return asyncio.run(go())
