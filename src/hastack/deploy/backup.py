"""`hastack backup`, `hastack backups` and `hastack restore`: the cluster's side of database backups.

The node's side is `agents/db_backup.py` (installed by the Galera component as `db-backup`): it takes
and keeps the copies under `galera.BACKUP_ROOT` on the node that took them. Here:
- **backup**: a Synced controller that is not the writer takes it (during mariadb-backup's short
  lock phase the server desyncs and pauses that node, and its own commits wait; the writer's would
  be the clients'). Only when no other node is Synced does the writer take it, and the result says
  so. The secrets file is copied beside the topology (`.hastack/<name>/backups/<backup>/`): a
  restore needs the passwords and keys of that time as much as the rows.
- **restore**: a plan first, then, once confirmed: the chain prepared on the node that holds it
  (the cluster still serving), MariaDB and garbd stopped everywhere, the prepared copy installed
  with grastate.dat safe to bootstrap, the primary component bootstrapped from it, hastack's SQL
  accounts put right, then every other controller emptied (its datadir kept beside it) and
  started, one at a time, so each joins by a full state transfer from the restored node (their
  own data is newer than the backup: Galera would refuse it). garbd last, then the Galera gate.
Every step goes through the deploy engine: a failure says host, step, command, exit code, output.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hastack.components import galera, haproxy
from hastack.deploy.engine import Deploy, StepFailed
from hastack.deploy.reads import wait_synced, wsrep
from hastack.deploy.stages.galera import GaleraStage
from hastack.deploy.stages.openstack import OpenStackStage
from hastack.facts import GaleraStatus
from hastack.facts.backups import Backup, backup_list, parse_json
from hastack.facts.haproxy import show_stat
from hastack.safefs import write_private
from hastack.transport.base import TransportError

STAGING = "/var/tmp/hastack-restore"
DATADIR = "/var/lib/mysql"


def answer(host: str, step: str, text: str) -> dict[str, object]:
    """db-backup's JSON; output that is not that fails the step like any failed command."""
    try:
        return parse_json(text, "db-backup")
    except ValueError as exc:
        raise StepFailed(host, step, f"{exc}: {text[-300:]!r}", code="DEPLOY-READ-FAILED") from None


def choose_donor(order: list[str], states: dict[str, GaleraStatus], writer: str | None,
                 wanted: str | None) -> tuple[str, str]:
    """(node, why): `wanted` if Synced; else the last Synced controller that is not the writer; else
    the writer. ValueError when no controller is Synced (nothing consistent to copy)."""
    synced = [n for n in order if states.get(n) is not None and states[n].synced]
    if wanted is not None:
        if wanted not in synced:
            st = states.get(wanted)
            raise ValueError(f"{wanted} is not Synced ({st.state if st and st.available else 'not answering'})")
        return wanted, "asked for"
    others = [n for n in synced if n != writer]
    if others:
        return others[-1], f"Synced and not the writer ({writer or 'unknown'})"
    if synced:
        return synced[0], "the only Synced node: the writer (its commits wait during the lock phase)"
    raise ValueError("no controller is Synced: there is no consistent copy to take; see `hastack status`")


async def writer(d: Deploy) -> str | None:
    """Which controller HAProxy sends the writes to, as the first controller that answers sees it."""
    for n in d.topo.controllers:
        try:
            stats = await d.fact(n.name, show_stat(), "read HAProxy's servers")
        except StepFailed:
            continue
        if stats.available:
            return stats.serving(haproxy.GALERA_PROXY)
    return None


async def take(d: Deploy, *, incremental: bool, keep: int, node: str | None) -> tuple[Backup, list[str], str]:
    """The backup, the names it pruned (older full chains), and why that node took it."""
    order = [n.name for n in d.topo.controllers]
    states = {}
    for name in order:
        try:
            states[name] = await wsrep(d, name)
        except StepFailed:
            continue  # unreachable: not a candidate
    try:
        host, why = choose_donor(order, states, await writer(d), node)
    except ValueError as exc:
        raise StepFailed(node or order[0], "choose the node to back up", str(exc), code="BACKUP-NO-DONOR") from None
    kind = "incr" if incremental else "full"
    step = f"take {'an incremental' if incremental else 'a full'} backup"
    res = await d.run(host, [galera.BACKUP_PROGRAM, "backup", galera.BACKUP_ROOT, kind, str(keep)], step,
                      timeout=3600)
    doc = answer(host, step, res.stdout)
    try:
        taken = Backup.of(host, doc)
    except ValueError as exc:
        raise StepFailed(host, step, str(exc), code="DEPLOY-READ-FAILED") from None
    listed = doc.get("pruned")
    pruned = [str(p) for p in listed] if isinstance(listed, list) else []
    d.changed(host, f"backup {taken.name} taken")
    return taken, pruned, why


def keep_secrets(secrets_file: Path | None, state: Path, name: str) -> Path | None:
    """A private copy of the secrets file beside the topology, named after the backup."""
    if secrets_file is None or not secrets_file.exists():
        return None
    dest = state / "backups" / name / "secrets.yml"
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(dest, secrets_file.read_text())
    return dest


async def inventory(d: Deploy) -> tuple[list[Backup], dict[str, str]]:
    """Every backup on every controller (oldest first per node), and the nodes that could not say."""
    found: list[Backup] = []
    errors: dict[str, str] = {}
    for n in d.topo.controllers:
        try:
            listed = await d.fact(n.name, backup_list(n.name, galera.BACKUP_PROGRAM, galera.BACKUP_ROOT),
                                  "list the backups")
            found.extend(listed)
        except StepFailed as exc:
            errors[n.name] = str(exc).splitlines()[0]
    return found, errors


def find(backups: list[Backup], name: str, host: str | None) -> Backup:
    hits = [b for b in backups if b.name == name and (host is None or b.host == host)]
    if not hits:
        where = f" on {host}" if host else ""
        raise ValueError(f"no backup {name}{where}; `hastack backups` lists them")
    if len(hits) > 1:
        raise ValueError(f"{name} is on {', '.join(b.host for b in hits)}: name the node with --node")
    return hits[0]


def chain_of(backups: list[Backup], b: Backup) -> list[Backup]:
    same = {x.name: x for x in backups if x.host == b.host}
    out = [b]
    while out[0].base is not None:
        base = same.get(out[0].base)
        if base is None:
            raise ValueError(f"{out[0].name} is based on {out[0].base}, which {b.host} no longer holds")
        out.insert(0, base)
    return out


def restore_plan(d: Deploy, b: Backup, chain: list[Backup]) -> list[str]:
    others = [n.name for n in d.topo.controllers if n.name != b.host]
    lines = [f"restore {b.name} (Galera position {b.position}) held by {b.host}:",
             f"  1. on {b.host}: prepare {' + '.join(c.name for c in chain)} into {STAGING} (the cluster still "
             "serves)",
             "  2. stop MariaDB on " + ", ".join(n.name for n in d.topo.controllers)
             + (" and garbd on " + ", ".join(n.name for n in d.topo.garbd_nodes) if d.topo.garbd_nodes else "")
             + ": the database is down from here to step 4",
             f"  3. on {b.host}: move {DATADIR}'s files aside ({DATADIR}.pre-restore-<time>), put the prepared copy in "
             "its place, grastate.dat safe to bootstrap",
             f"  4. on {b.host}: bootstrap the primary component from it, put hastack's SQL accounts right",
             f"  5. one at a time, on {', '.join(others) or '(no other controller)'}: move {DATADIR}'s files aside, "
             f"start MariaDB: a full state transfer from {b.host}",
             "  6. " + ("start garbd on " + ", ".join(n.name for n in d.topo.garbd_nodes) + "; "
                        if d.topo.garbd_nodes else "") + "wait for every node Synced",
             "every write after the backup's position is lost: that is what a restore is for"]
    return lines


async def restore(d: Deploy, b: Backup, chain: list[Backup], *, dry_run: bool,
                  confirm: Callable[[list[str]], bool], show: Callable[[list[str]], None]) -> bool:
    plan = restore_plan(d, b, chain)
    show(plan)
    if dry_run or not confirm(plan):
        return False
    host = b.host
    d.stage = "prepare"
    res = await d.run(host, [galera.BACKUP_PROGRAM, "prepare", galera.BACKUP_ROOT, b.name, STAGING],
                      f"prepare {b.name}", timeout=3600)
    d.changed(host, f"prepared {b.name} at {answer(host, 'prepare', res.stdout).get('position')}")
    d.stage = "stop"
    for n in d.topo.garbd_nodes:
        await d.run(n.name, ["systemctl", "stop", "garbd"], "stop garbd")
    for n in d.topo.controllers:
        try:
            await d.run(n.name, ["systemctl", "stop", "mariadb"], "stop MariaDB", timeout=300)
        except StepFailed as exc:
            if isinstance(exc.__cause__, TransportError):
                raise StepFailed(n.name, "stop MariaDB", "unreachable: a restore needs every controller (one "
                                 "left running would keep the old cluster going); bring it back first",
                                 code="DEPLOY-HOST-UNREACHABLE") from exc
            raise
        d.changed(n.name, "stopped MariaDB")
    d.stage = "install"
    res = await d.run(host, [galera.BACKUP_PROGRAM, "install", STAGING, DATADIR], "install the prepared copy",
                      timeout=3600)
    aside = answer(host, "install the prepared copy", res.stdout).get("moved_aside")
    d.changed(host, f"installed {b.name}; the files it replaced are in {aside}")
    await d.run(host, ["galera_new_cluster"], "bootstrap the primary component", timeout=600)
    d.changed(host, "bootstrapped the Galera primary component from the backup")
    await wait_synced(d, host, timeout=300)
    await GaleraStage().users(d, host)
    if OpenStackStage().applies(d):
        await OpenStackStage().databases(d, host)
    d.stage = "join"
    for n in d.topo.controllers:
        if n.name == host:
            continue
        res = await d.run(n.name, [galera.BACKUP_PROGRAM, "empty", DATADIR], "move the old datadir aside")
        # a full state transfer happens inside this start (systemd waits for it: Type=notify)
        await d.run(n.name, ["systemctl", "start", "mariadb"], "start MariaDB (a full state transfer)",
                    timeout=3600)
        await wait_synced(d, n.name, timeout=900)
        aside = answer(n.name, "move the old datadir aside", res.stdout).get("moved_aside")
        d.changed(n.name, f"joined by a full copy; its old files are in {aside}")
    stage = GaleraStage()
    await d.each(d.topo.garbd_nodes, lambda n: stage.garbd(d, n))
    await stage.gate(d)
    return True


def size_text(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"

