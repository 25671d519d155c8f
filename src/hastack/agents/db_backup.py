#!/usr/bin/python3
"""hastack database backups, run on a controller by `hastack backup` and `hastack restore` (over SSH).

What it keeps: physical backups of the node's MariaDB taken with mariadb-backup, under ROOT:
    ROOT/<UTC time>-full/          data/ (mariadb-backup's target dir) + hastack-backup.json
    ROOT/<UTC time>-incr/          the same; data/ holds the pages changed since its base
Every incremental is based on the newest backup of the newest full's chain (chained, the smallest
copies); a restore prepares the full, then applies each incremental of the chain in order. A backup
is written under ROOT/.partial-<name> and renamed when complete: a failed run leaves nothing that
looks like a backup. One run at a time (a lock on ROOT/.lock).

Galera: mariadb-backup 10.11.8+ runs BACKUP STAGE, and the server desyncs and pauses this node for
the lock phase by itself (sql/backup.cc), so the other nodes keep committing; commits on this node
wait for that moment, which is why `hastack backup` picks a node that is not the writer.
`--galera-info` records the cluster position (uuid:seqno) the backup holds; a restore writes it to
grastate.dat with safe_to_bootstrap, so the restored node can bootstrap a new primary component.

Commands (every path is checked against a strict pattern; names are this program's own):
    db-backup backup ROOT full|incr KEEP     KEEP: full chains kept (older chains deleted after a full)
    db-backup scheduled ROOT full|incr KEEP SELF ADDR...
                                             the timers' (and a by-hand run on every node at once):
                                             backs up only if SELF is the one to (see `turn`);
                                             an incremental with no full here is taken as a full
    db-backup list ROOT
    db-backup prepare ROOT NAME STAGING      a copy of NAME's chain, prepared, in STAGING (replaced)
    db-backup install STAGING DATADIR        mariadbd stopped: DATADIR moved aside, STAGING moved in,
                                             owned by mysql, grastate.dat safe to bootstrap
    db-backup empty DATADIR                  mariadbd stopped: DATADIR moved aside, an empty one made
                                             (the node then joins by a full state transfer)
Each prints one JSON object on stdout. Exit 1: the step failed (the message says why); 2: bad arguments.

This file is copied to the node and run by the node's own Python 3 (standard library only).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

TOOL = "mariadb-backup"
NAME = re.compile(r"\d{8}T\d{6}Z-(full|incr)")
PLAIN_PATH = re.compile(r"/[A-Za-z0-9._/-]{1,200}")
META = "hastack-backup.json"
GALERA_INFO = ("xtrabackup_galera_info", "mariadb_backup_galera_info")
"""10.11 writes the first name, 11.4+ the second."""
PIDFILE = Path("/run/mysqld/mysqld.pid")


class Failed(Exception):
    """A step that did not work: its message goes to the caller as is."""


def checked_path(text: str) -> Path:
    if not PLAIN_PATH.fullmatch(text) or "/../" in f"{text}/" or "//" in text:
        raise ValueError(f"not an absolute plain path: {text!r}")
    return Path(text)


def checked_address(text: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F.:]{2,45}", text):
        raise ValueError(f"not an IP address: {text!r}")
    return text


def checked_name(text: str) -> str:
    if not NAME.fullmatch(text):
        raise ValueError(f"not a backup name: {text!r}")
    return text


def run(argv: Sequence[str]) -> str:
    """The command's output (stdout, then stderr: mariadb-backup writes its report there)."""
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise Failed(f"{' '.join(argv)} exited {done.returncode}:\n{tail}")
    return done.stdout + done.stderr


def position(data: Path) -> str:
    """The uuid:seqno mariadb-backup recorded (newer versions add a domain id after a space)."""
    for name in GALERA_INFO:
        f = data / name
        if f.exists():
            token = (f.read_text().split() or [""])[0]
            if re.fullmatch(r"[0-9a-f-]{36}:-?\d+", token):
                return token
            raise Failed(f"{f}: no uuid:seqno in it ({token!r})")
    raise Failed(f"{data}: no Galera position file (was the backup taken with --galera-info on a Galera node?)")


def backups(root: Path) -> list[dict[str, object]]:
    """Every complete backup under root, oldest first."""
    if not root.is_dir():
        return []
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and NAME.fullmatch(p.name)):
        try:
            out.append(json.loads((d / META).read_text()))
        except (OSError, ValueError):
            continue  # not one of ours, or damaged: never used as a base, never listed
    return out


def chain(root: Path, name: str) -> list[dict[str, object]]:
    """NAME and its bases back to the full, full first."""
    by_name = {str(b["name"]): b for b in backups(root)}
    if name not in by_name:
        raise Failed(f"no backup {name} under {root}")
    out = [by_name[name]]
    while out[0]["kind"] != "full":
        base = str(out[0]["base"])
        if base not in by_name or base in [b["name"] for b in out]:
            raise Failed(f"{out[0]['name']} is based on {base}, which is gone")
        out.insert(0, by_name[base])
    return out


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def backup(root: Path, kind: str, keep: int) -> dict[str, object]:
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Failed(f"another backup runs on this node (lock {root}/.lock)") from None
        for stale in root.glob(".partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        started = time.time()
        name = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started)) + f"-{kind}"
        if (root / name).exists():
            raise Failed(f"{root / name} exists: one backup a second at most")
        base: dict[str, object] | None = None
        if kind == "incr":
            fulls = [b for b in backups(root) if b["kind"] == "full"]
            if not fulls:
                raise Failed("no full backup to base an incremental on: take a full one first")
            newest = str(fulls[-1]["name"])
            base = [b for b in backups(root) if b["full"] == newest][-1]
        partial = root / f".partial-{name}"
        partial.mkdir(mode=0o700)
        try:
            argv = [TOOL, "--backup", "--galera-info", "--user=root", f"--target-dir={partial / 'data'}"]
            if base is not None:
                argv.append(f"--incremental-basedir={root / str(base['name']) / 'data'}")
            run(argv)
            meta: dict[str, object] = {
                "name": name, "kind": kind, "full": name if base is None else base["full"],
                "base": None if base is None else base["name"], "node": os.uname().nodename,
                "position": position(partial / "data"), "version": run([TOOL, "--version"]).strip(),
                "started": round(started, 3), "seconds": round(time.time() - started, 2),
                "bytes": size(partial / "data"),
            }
            (partial / META).write_text(json.dumps(meta, indent=1) + "\n")
            partial.rename(root / name)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        meta["pruned"] = prune(root, keep) if kind == "full" else []
        return meta


WSREP_READ = ("mariadb", "--batch", "--skip-column-names", "-e",
              "SHOW GLOBAL STATUS WHERE Variable_name IN "
              "('wsrep_cluster_status', 'wsrep_local_state_comment', 'wsrep_incoming_addresses')")


def turn(me: str, order: Sequence[str], status: dict[str, str]) -> str | None:
    """None when this node (address `me`) takes the scheduled backup, else why not. The one to is the
    last controller in the topology's order (`order`, addresses) that is in the primary component:
    `hastack backup`'s choice too, as HAProxy sends the writes to the first one that is up. Each node
    decides from its own Galera status, so one node backs up without any of them asking the others."""
    if status.get("wsrep_cluster_status") != "Primary" or status.get("wsrep_local_state_comment") != "Synced":
        return (f"this node is not Synced in a primary component ({status.get('wsrep_cluster_status', '?')}, "
                f"{status.get('wsrep_local_state_comment', '?')})")
    members = {a.rsplit(":", 1)[0].strip("[]") for a in status.get("wsrep_incoming_addresses", "").split(",") if a}
    if me not in order:
        raise ValueError(f"{me} is not in the controllers' order {list(order)}")
    later = [a for a in order[order.index(me) + 1:] if a in members]
    if later:
        return f"{later[-1]} takes it (later in the topology's order and in the primary component)"
    return None


def scheduled(root: Path, kind: str, keep: int, me: str, order: Sequence[str]) -> dict[str, object]:
    rows = [line.split("\t", 1) for line in run(WSREP_READ).splitlines() if "\t" in line]
    why = turn(me, order, {k: v.strip() for k, v in rows})
    if why is not None:
        return {"skipped": why}
    if kind == "incr" and not any(b["kind"] == "full" for b in backups(root)):
        return {**backup(root, "full", keep), "note": "no full backup on this node to base an incremental on"}
    return backup(root, kind, keep)


def prune(root: Path, keep: int) -> list[str]:
    """Delete whole chains older than the KEEP newest fulls (an incremental never outlives its full)."""
    fulls = [str(b["name"]) for b in backups(root) if b["kind"] == "full"]
    doomed = set(fulls[:-keep]) if keep > 0 else set()
    gone = [str(b["name"]) for b in backups(root) if b["full"] in doomed]
    for name in gone:
        shutil.rmtree(root / name)
    return gone


def prepare(root: Path, name: str, staging: Path) -> dict[str, object]:
    """A copy of NAME's chain in STAGING, prepared; what a failed restore left there is replaced."""
    links = chain(root, name)
    if staging.exists():
        shutil.rmtree(staging)
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(root / str(links[0]["name"]) / "data", staging, symlinks=True)
        run([TOOL, "--prepare", f"--target-dir={staging}"])
        for link in links[1:]:
            run([TOOL, "--prepare", f"--target-dir={staging}",
                 f"--incremental-dir={root / str(link['name']) / 'data'}"])
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {"name": name, "chain": [link["name"] for link in links], "position": position(staging),
            "staging": str(staging)}


def stopped() -> None:
    """mariadbd must not run: moving its datadir under it would lose whatever it writes next."""
    try:
        pid = int(PIDFILE.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return
    raise Failed(f"mariadbd runs (pid {pid}): stop it first (systemctl stop mariadb)")


def aside(datadir: Path) -> str:
    """Everything in DATADIR moved into a new directory beside it, DATADIR left empty and owned by
    mysql. Entry by entry, not the directory itself: DATADIR may be a mount point, and on an
    overlay (the lab's nodes) a directory of the lower layer cannot be renamed (EXDEV); shutil.move
    copies what the kernel will not rename."""
    datadir.mkdir(mode=0o755, exist_ok=True)
    entries = sorted(datadir.iterdir())
    moved = datadir.with_name(f"{datadir.name}.pre-restore-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    if entries:
        moved.mkdir(mode=0o700)
        for entry in entries:
            shutil.move(str(entry), str(moved / entry.name))
    shutil.chown(datadir, "mysql", "mysql")
    return str(moved) if entries else ""


def install(staging: Path, datadir: Path) -> dict[str, object]:
    stopped()
    pos = position(staging)
    uuid, seqno = pos.split(":")
    moved = aside(datadir)
    run([TOOL, "--move-back", f"--target-dir={staging}", f"--datadir={datadir}"])
    (datadir / "grastate.dat").write_text(
        f"# GALERA saved state\nversion: 2.1\nuuid:    {uuid}\nseqno:   {seqno}\nsafe_to_bootstrap: 1\n")
    for path in (datadir, *datadir.rglob("*")):
        shutil.chown(path, "mysql", "mysql")
    shutil.rmtree(staging, ignore_errors=True)
    return {"position": pos, "datadir": str(datadir), "moved_aside": moved}


def empty(datadir: Path) -> dict[str, object]:
    stopped()
    return {"datadir": str(datadir), "moved_aside": aside(datadir)}


def main(argv: list[str]) -> int:
    try:
        match argv:
            case ["backup", root, ("full" | "incr") as kind, keep] if keep.isdigit():
                out = backup(checked_path(root), kind, int(keep))
            case ["scheduled", root, ("full" | "incr") as kind, keep, me, *order] if keep.isdigit() and order:
                out = scheduled(checked_path(root), kind, int(keep), checked_address(me),
                                [checked_address(a) for a in order])
            case ["list", root]:
                out = {"backups": backups(checked_path(root))}
            case ["prepare", root, name, staging]:
                out = prepare(checked_path(root), checked_name(name), checked_path(staging))
            case ["install", staging, datadir]:
                out = install(checked_path(staging), checked_path(datadir))
            case ["empty", datadir]:
                out = empty(checked_path(datadir))
            case _:
                print(__doc__.split("Commands")[1], file=sys.stderr)
                return 2
    except ValueError as exc:
        print(f"db-backup: {exc}", file=sys.stderr)
        return 2
    except (Failed, OSError) as exc:
        print(f"db-backup: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
