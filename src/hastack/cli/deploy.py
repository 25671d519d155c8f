"""`hastack plan` and `hastack deploy`: render the library's events and results."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from rich.console import Console
from rich.table import Table

from hastack.components.base import Ctx
from hastack.components.galera import BACKUP_ROOT
from hastack.deploy.engine import Deploy, Event, Interrupted, StageFailed, StepFailed
from hastack.deploy.rotate import Drift
from hastack.deploy.run import PlanResult, deploy, plan
from hastack.facts.backups import Backup
from hastack.plan.steps import changes, refusals
from hastack.render import context
from hastack.topology.load import Loaded
from hastack.transport.base import Transport
from hastack.transport.ssh import connect_all

T = TypeVar("T")

STYLE = {"stage": "bold cyan", "change": "yellow", "ok": "green", "fail": "red", "info": "dim", "step": ""}


def show_event(console: Console, t0: float) -> object:
    def emit(e: Event) -> None:
        where = f"{e.host}: " if e.host else ""
        console.print(f"[{time.monotonic() - t0:6.1f}s] [{e.stage}] {where}{e.message}",
                      style=STYLE[e.kind], markup=False, highlight=False)
    return emit


async def _close(transports: dict[str, object]) -> None:
    await asyncio.gather(*(t.close() for t in transports.values()), return_exceptions=True)  # type: ignore[attr-defined]


def _plan(ctx: Ctx, loaded: Loaded, only: list[str] | None = None) -> PlanResult:
    async def go() -> PlanResult:
        transports = await connect_all(ctx.topo, loaded.path)
        try:
            return await plan(ctx, transports, only)
        finally:
            await _close(dict(transports))

    return asyncio.run(go())


def show_plan(result: PlanResult, console: Console) -> int:
    """Print the plan (files and packages per host, then every stage's steps); the number of
    changes it shows."""
    for host, hp in result.hosts.items():
        changed = hp.changed_files
        console.print(f"[bold]{host}[/]: {len(changed)} file(s) to change, {len(hp.packages)} package(s) to "
                      "install")
        for c in changed:
            console.print(f"  ~ {c.summary()}", markup=False)
            if c.file.path in hp.diffs:
                console.print(hp.diffs[c.file.path], markup=False, highlight=False)
        for p in hp.packages:
            console.print(f"  + package {p}", markup=False)
    stage = ""
    for step in result.steps:
        if step.stage != stage:
            stage = step.stage
            n = len(changes([s for s in result.steps if s.stage == stage]))
            console.print(f"[bold]stage {stage}[/]: {n} step(s) that change something")
        console.print(f"  {step.render()}", markup=False, highlight=False,
                      style={"change": "yellow", "check": "dim", "refuse": "red"}[step.kind])
    for host, msg in result.errors.items():
        console.print(f"[red]{host}: cannot read: {msg}[/]")
    if result.new_secrets:
        console.print(f"{len(result.new_secrets)} secret(s) to generate ({', '.join(result.new_secrets[:6])}"
                      f"{', ...' if len(result.new_secrets) > 6 else ''}): deploy creates them, the plan wrote none",
                      markup=False, highlight=False)
    if refused := refusals(result.steps):
        console.print(f"deploy would stop at {len(refused)} step(s) marked !", style="red")
    return plan_total(result)


def plan_total(result: PlanResult) -> int:
    """The changes a plan counts: changed files, packages to install, stage steps that change something."""
    return (sum(len(h.changed_files) + len(h.packages) for h in result.hosts.values())
            + len(changes(result.steps)))


def run_plan(loaded: Loaded, console: Console, *, as_json: bool = False) -> int:
    result = _plan(context(loaded), loaded)
    if as_json:
        console.print_json(json.dumps(plan_json(result)))
        return plan_exit(result)
    total = show_plan(result, console)
    console.print(f"plan: {total} change(s); nothing was changed")
    return plan_exit(result)


def plan_json(result: PlanResult) -> dict[str, object]:
    """The plan as data, for scripts: per host the files (path, action, owner, group, mode; no
    content, no diff) and packages, the unreadable hosts, the names of the secrets deploy would
    generate (never a value), and every stage's steps in order."""
    hosts = {h: {"files": [{"path": c.file.path, "action": c.action, "owner": c.file.owner, "group": c.file.group,
                            "mode": f"{c.file.mode:04o}"} for c in hp.changed_files],
                 "packages": list(hp.packages)} for h, hp in result.hosts.items()}
    steps = [{"stage": st.stage, "host": st.host or None, "kind": st.kind, "text": st.text, "code": st.code or None}
             for st in result.steps]
    return {"changes": plan_total(result), "exit": plan_exit(result), "hosts": hosts, "unreadable": dict(result.errors),
            "new_secrets": list(result.new_secrets), "steps": steps}


def plan_exit(result: PlanResult) -> int:
    """`plan` and `deploy --dry-run`: 0 deploy can go on, 1 it would stop at a `!` step, 3 a host
    could not be read."""
    return 3 if result.errors else 1 if refusals(result.steps) else 0


Ask = Callable[[str], str] | None


def terminal_ask(console: Console) -> Ask:
    """How to put a question to the operator, or None when stdin or stdout is not a terminal: then
    nobody can answer, and the command stops unless --yes was given."""
    return console.input if sys.stdin.isatty() and console.is_terminal else None


def agreed(console: Console, ask: Ask, question: str, again: str) -> bool:
    """The operator's yes to `question` (the one confirmation of deploy, recover and rotate-keys).

    No terminal: no, and the command to run instead (`again` completes "run again with --yes to")."""
    if ask is None:
        console.print(f"not confirmed: run again with --yes to {again}", style="yellow", markup=False)
        return False
    if ask(question).strip().lower() in ("y", "yes"):
        return True
    console.print("not confirmed: nothing was changed", style="yellow")
    return False


def confirm_deploy(result: PlanResult, console: Console, *, dry_run: bool, ask: Ask) -> int | None:
    """The plan shown, then the operator's word: None to go on, else the exit code to stop with.

    A plan with nothing to change goes on without asking (deploy then only checks every cluster and
    gate). `ask` None: not a terminal, so nobody can answer; deploy stops and says to pass --yes."""
    total = show_plan(result, console)
    if result.errors:
        console.print("plan: some hosts could not be read; deploy would stop at them", style="yellow")
    if dry_run:
        console.print(f"dry run: {total} change(s) planned; nothing was changed")
        return plan_exit(result)
    if refusals(result.steps):
        # Nothing an earlier stage does clears these (a node the topology left out still runs):
        # stopping now changes nothing, where deploy would stop halfway.
        console.print("not started: deploy would stop at the step(s) marked ! above; nothing was changed",
                      style="red")
        return 1
    if total == 0 and not result.new_secrets and not result.errors:
        console.print("plan: nothing to change; deploy checks every cluster and gate")
        return None
    question = f"carry out these {total} change(s), with their restarts and the cluster steps they need? [y/N] "
    return None if agreed(console, ask, question, "carry out this plan (or --dry-run to only show it)") else 1


def run_deploy(loaded: Loaded, console: Console, only: list[str] | None, *, yes: bool = True,
               dry_run: bool = False) -> int:
    """`yes`: no plan, no question (scripts, `./go up`, tests); else the plan comes first (see
    `confirm_deploy`). The plan and the deploy share one context, so the secrets a fresh plan names
    are the ones deploy keeps."""
    ctx = context(loaded)
    if dry_run or not yes:
        stop = confirm_deploy(_plan(ctx, loaded, only), console, dry_run=dry_run, ask=terminal_ask(console))
        if stop is not None:
            return stop
    return _apply(ctx, loaded, console, only)


def _apply(ctx: Ctx, loaded: Loaded, console: Console, only: list[str] | None) -> int:
    """Deploy with this context, the stages' events on the console; the exit code."""
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


def run_rotate_secrets(loaded: Loaded, console: Console, services: list[str], *, dry_run: bool, yes: bool) -> int:
    """New logins for the services (all, or `services`), then a deploy that moves every service onto them
    one node at a time and removes the previous ones (`components/logins.py`, `deploy/stages/logins.py`).
    A rotation already under way is finished, not started again. Exit codes as deploy's."""
    from hastack.components import logins
    from hastack.deploy.stages.logins import principals, under_way

    ctx = context(loaded)
    unknown = [s for s in services if s not in ctx.topo.openstack.services]
    if unknown:
        console.print(f"error: this topology runs no {', '.join(unknown)} (it runs "
                      f"{', '.join(ctx.topo.openstack.services)})", style="red")
        return 1
    pending = [p for p, _ in under_way(ctx)]
    chosen = [p for p in principals(ctx.topo, services or None) if p not in pending]
    if pending:
        console.print(f"a rotation is under way for {', '.join(map(str, pending))}: this run finishes it"
                      + (" and does not start another" if chosen else ""))
        chosen = []
    for p in chosen:
        now = logins.login(ctx.secrets, p.kind, p.base).user
        console.print(f"  {p}: {now} -> {logins.alternate(p.base, now)}, a new password")
    console.print("then deploy: every service that uses them restarted one node at a time onto its new login "
                  "(the previous one keeps working meanwhile), then the previous logins removed from MariaDB, "
                  "RabbitMQ and Keystone once nothing uses them")
    if dry_run:
        return 0
    again = "rotate (or --dry-run to only show it)"
    if not yes and not agreed(console, terminal_ask(console), "rotate? [y/N] ", again):
        return 1
    for p in chosen:
        logins.begin(ctx.secrets, p.kind, p.base)
    ctx.secrets.save()  # the rotation is on record before any host changes: an interrupted one is finished later
    return _apply(ctx, loaded, console, None)


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
        return yes or agreed(console, terminal_ask(console), "carry out this plan? [y/N] ",
                             "carry out this plan (or --dry-run to only show it)")

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


def run_rotate_keys(loaded: Loaded, console: Console, *, dry_run: bool, yes: bool, force: bool,
                    credentials: bool = False) -> int:
    """Check every Keystone node holds the current keys, say what will happen, rotate the secrets, write
    the keys, check again; credential keys then get every credential re-encrypted (migrate). Exit 0
    done (or dry run), 1 refused or not confirmed, 3 a node failed."""
    from hastack.components import keystone
    from hastack.deploy.rotate import key_drift, keystone_nodes, migrate_credentials, write_keys

    ctx = context(loaded)
    nodes = keystone_nodes(ctx)
    if not nodes:
        console.print("error: this topology runs no Keystone: there are no keys to rotate", style="red")
        return 1
    now = time.time()

    async def connected(fn: Callable[[dict[str, Transport]], Awaitable[T]]) -> T:
        transports = await connect_all(ctx.topo, loaded.path, names=nodes)
        try:
            return await fn(dict(transports))
        finally:
            await _close(dict(transports))

    def show(drift: list[Drift], why: str) -> None:
        for d in drift:
            console.print(d.render(), style="red", markup=False, highlight=False)
        console.print(why, style="red", markup=False, highlight=False)

    def migrated() -> bool:
        failed = asyncio.run(connected(lambda t: migrate_credentials(ctx, t)))
        if failed:
            show([failed], "the credentials are not all re-encrypted yet; every node holds the keys that read "
                           "them. Run `hastack rotate-keys --credentials` again: it migrates before it rotates.")
            return False
        ctx.secrets.put(keystone.CREDENTIAL_MIGRATED, str(int(time.time())))
        ctx.secrets.save()
        return True

    drift = asyncio.run(connected(lambda t: key_drift(ctx, t, credentials)))
    if drift:
        show(drift, "not rotated: every Keystone node must hold the current keys first, so that the key about to "
                    "become primary is staged everywhere. Run `hastack deploy` (or bring the node back), then again.")
        return 1
    if credentials:
        pending = keystone.migrate_pending(ctx.secrets)
        console.print(("the last rotation's credential_migrate did not complete: it runs first; then " if pending
                       else "") + f"rotate Keystone's credential keys on {', '.join(nodes)}: the staged key (0) "
                      "becomes the primary (2), the primary the secondary (1), the old secondary is dropped, a new "
                      "key is staged; files written in the order 1, 2, 0 on each node; then every stored credential "
                      "is re-encrypted with the new primary (keystone-manage credential_migrate); no restart",
                      markup=False, highlight=False)
    else:
        wait = keystone.rotation_wait(ctx.secrets, now)
        if wait and not force:
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(now + wait))
            console.print(f"not rotated: the last rotation was less than {keystone.ROTATION_INTERVAL_S // 3600} h "
                          f"ago (token expiration + allow_expired_window); another now would drop the key that "
                          f"signed tokens still valid. Safe from {when}; --force rotates anyway.", style="red",
                          markup=False)
            return 1
        n = keystone.FERNET_KEYS
        console.print(f"rotate Keystone's Fernet token keys on {', '.join(nodes)}: the staged key (0) becomes the "
                      f"primary ({n - 1}), the primary a secondary, the oldest secondary is dropped, a new key is "
                      f"staged; files written in the order {', '.join(map(str, keystone.FERNET_ORDER))} on each "
                      "node; no restart", markup=False, highlight=False)
    if dry_run:
        console.print("dry run: nothing was changed")
        return 0
    again = "rotate (or --dry-run to only show it)"
    if not yes and not agreed(console, terminal_ask(console), "rotate? [y/N] ", again):
        return 1
    t0 = time.monotonic()
    if credentials:
        if keystone.migrate_pending(ctx.secrets) and not migrated():
            return 3
        keystone.rotate_credential(ctx.secrets, now)
    else:
        keystone.rotate_fernet(ctx.secrets, now)
    ctx.secrets.save()
    failed = asyncio.run(connected(lambda t: write_keys(ctx, t, credentials)))
    if failed:
        show(failed, "the secrets file holds the new keys; the nodes above do not yet. Mixed nodes still "
                     "accept each other's keys. Run `hastack deploy` to finish.")
        return 3
    drift = asyncio.run(connected(lambda t: key_drift(ctx, t, credentials)))
    if drift:
        show(drift, "written, but the nodes above do not hold the new keys: run `hastack deploy`.")
        return 3
    if credentials and not migrated():
        return 3
    console.print(f"rotated on {len(nodes)} node(s) in {time.monotonic() - t0:.1f}s; every node holds the new keys"
                  + ("; every credential re-encrypted with the new primary" if credentials else ""))
    return 0


def _on_cluster(loaded: Loaded, console: Console, fn: Callable[[Deploy], Awaitable[int]]) -> int:
    """Run fn with a deploy engine over every node (events shown as deploy shows them); a failed step
    is printed as deploy prints it (host, step, command, exit code, output tail), exit 1."""
    from hastack.components.registry import desired

    ctx = context(loaded)

    async def go() -> int:
        transports = await connect_all(ctx.topo, loaded.path)
        d = Deploy(ctx.topo, desired(ctx), transports, ctx.secrets,
                   show_event(console, time.monotonic()))  # type: ignore[arg-type]
        try:
            return await fn(d)
        except (StageFailed, StepFailed) as exc:
            for f in exc.failures if isinstance(exc, StageFailed) else [exc]:
                console.print(f.render(), style="red", markup=False, highlight=False)
            return 1
        finally:
            await _close(dict(transports))

    return asyncio.run(go())


def run_backup(loaded: Loaded, console: Console, *, incremental: bool, keep: int | None, node: str | None) -> int:
    from hastack.components.galera import backup_keep
    from hastack.deploy import backup
    from hastack.secrets import secrets_path, state_dir

    async def go(d: Deploy) -> int:
        nonlocal keep
        keep = backup_keep(d.topo) if keep is None else keep  # the schedule's, so a backup by hand prunes alike
        b, pruned, why = await backup.take(d, incremental=incremental, keep=keep, node=node)
        kept = backup.keep_secrets(secrets_path(loaded.path, d.topo.name), state_dir(loaded.path, d.topo.name),
                                   b.name)
        console.print(f"backup {b.name} ({b.kind}{', on ' + b.base if b.base else ''}) on {b.host} ({why}): "
                      f"Galera position {b.position}, {backup.size_text(b.bytes)} in {b.seconds:.1f}s, kept in "
                      f"{BACKUP_ROOT}/{b.name}", markup=False, highlight=False)
        if pruned:
            console.print(f"deleted older chains on {b.host} (--keep {keep}): {', '.join(pruned)}", markup=False)
        if kept:
            console.print(f"the secrets of this moment: {kept} (0600)", markup=False, highlight=False)
        return 0

    return _on_cluster(loaded, console, go)


def backups_table(found: list[Backup]) -> Table:
    """A name is what `restore` takes: never cut, whatever the terminal's width (the position may be)."""
    from hastack.deploy import backup

    table = Table(title=f"backups under {BACKUP_ROOT}")
    widest = max((len(b.name) for b in found), default=4)
    for col in ("node", "name", "kind", "based on", "Galera position", "size", "seconds"):
        named = col in ("name", "based on")
        table.add_column(col, no_wrap=named or col == "node", min_width=widest if named else None,
                         overflow="fold" if named else "ellipsis")
    for b in found:
        table.add_row(b.host, b.name, b.kind, b.base or "-", b.position, backup.size_text(b.bytes),
                      f"{b.seconds:.1f}")
    return table


def run_backups(loaded: Loaded, console: Console) -> int:
    from hastack.deploy import backup

    async def go(d: Deploy) -> int:
        found, errors = await backup.inventory(d)
        console.print(backups_table(found))
        for host, why in errors.items():
            console.print(f"{host}: could not list: {why}", style="yellow", markup=False, highlight=False)
        return 3 if errors else 0

    return _on_cluster(loaded, console, go)


def run_retire(loaded: Loaded, console: Console, name: str, *, dry_run: bool, yes: bool) -> int:
    from hastack.deploy import retire

    async def go(d: Deploy) -> int:
        node = d.topo.node(name)
        for line in retire.plan(d, node):
            console.print(line, markup=False, highlight=False)
        if why := retire.refusals(d, node):
            for w in why:
                console.print(f"refused: {w}", style="red", markup=False, highlight=False)
            return 1
        if dry_run:
            console.print("dry run: nothing was changed")
            return 0
        if not (yes or agreed(console, terminal_ask(console), f"retire {name}? [y/N] ",
                              "retire (or --dry-run to only show the plan)")):
            return 1
        t0 = time.monotonic()
        await retire.retire(d, node)
        console.print(f"{name} retired in {time.monotonic() - t0:.1f}s: remove it from {loaded.path} (or put its "
                      "successor in its place) and run `hastack deploy`", markup=False, highlight=False)
        return 0

    return _on_cluster(loaded, console, go)


def run_restore(loaded: Loaded, console: Console, name: str, *, node: str | None, dry_run: bool, yes: bool) -> int:
    from hastack.deploy import backup

    def show(lines: list[str]) -> None:
        for line in lines:
            console.print(line, markup=False, highlight=False)

    def confirm(lines: list[str]) -> bool:
        return yes or agreed(console, terminal_ask(console), "restore this backup over the running database? "
                             "[y/N] ", "restore (or --dry-run to only show the plan)")

    async def go(d: Deploy) -> int:
        t0 = time.monotonic()
        found, errors = await backup.inventory(d)
        try:
            b = backup.find(found, name, node)
            chain = backup.chain_of(found, b)
        except ValueError as exc:
            console.print(f"error: {exc}", style="red", markup=False, highlight=False)
            for host, why in errors.items():
                console.print(f"{host}: could not list: {why}", style="yellow", markup=False, highlight=False)
            return 1
        if not await backup.restore(d, b, chain, dry_run=dry_run, confirm=confirm, show=show):
            if dry_run:
                console.print("dry run: nothing was changed")
                return 0
            return 1
        console.print(f"restored {b.name} in {time.monotonic() - t0:.1f}s; every controller Synced", markup=False)
        return 0

    return _on_cluster(loaded, console, go)
