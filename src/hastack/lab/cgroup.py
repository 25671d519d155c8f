"""Per-node cgroups: how the lab finds, freezes and kills *every* process of a node.

Why cgroups and never process names: the nodes share the host's PID view from outside, so
`pkill mariadbd` would hit every node. A node's processes are exactly its cgroup's members.
The same relative path is created in the cgroup v2 tree (kill, freeze, membership) and in the
v1 `name=systemd` tree (systemd-nspawn on this mixed v1/v2 host looks there).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from hastack.lab.state import CGROUP_NAMED, CGROUP_V2

TREES = (CGROUP_V2, CGROUP_NAMED)


def trees() -> list[Path]:
    return [t for t in TREES if (t / "cgroup.procs").exists()]


def create(rel: str) -> None:
    for tree in trees():
        (tree / rel).mkdir(parents=True, exist_ok=True)


def join(rel: str, pid: int = 0) -> None:
    """Move pid (0 = the caller) into the cgroup in every tree; children inherit it."""
    create(rel)
    for tree in trees():
        (tree / rel / "cgroup.procs").write_text(f"{pid or os.getpid()}\n")


def pids(rel: str) -> list[int]:
    """Every process in the cgroup and its sub-cgroups (v2 tree)."""
    base = CGROUP_V2 / rel
    if not base.is_dir():
        return []
    found: list[int] = []
    for d, _, _ in os.walk(base):
        try:
            found += [int(p) for p in Path(d, "cgroup.procs").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def cpu_usec(rel: str) -> int:
    """CPU time used by every process of the cgroup so far (v2 `cpu.stat`), in microseconds."""
    for line in (CGROUP_V2 / rel / "cpu.stat").read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            return int(value)
    raise OSError(f"no usage_usec in {CGROUP_V2 / rel / 'cpu.stat'}")


def populated(rel: str) -> bool:
    events = CGROUP_V2 / rel / "cgroup.events"
    if events.is_file():
        return "populated 1" in events.read_text()
    return bool(pids(rel))


def kill(rel: str, timeout: float = 15.0) -> bool:
    """SIGKILL every process of the cgroup; True once it is empty (bounded wait)."""
    knob = CGROUP_V2 / rel / "cgroup.kill"
    deadline = time.monotonic() + timeout
    while populated(rel):
        if knob.exists():
            knob.write_text("1\n")
        else:
            for pid in pids(rel):
                _signal(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def signal_all(rel: str, sig: int) -> None:
    for pid in pids(rel):
        _signal(pid, sig)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def freeze(rel: str, frozen: bool, timeout: float = 10.0) -> bool:
    """cgroup v2 freezer: every process of the node stops (like a hung machine) or resumes."""
    (CGROUP_V2 / rel / "cgroup.freeze").write_text("1\n" if frozen else "0\n")
    want = f"frozen {1 if frozen else 0}"
    deadline = time.monotonic() + timeout
    while want not in (CGROUP_V2 / rel / "cgroup.events").read_text():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def is_frozen(rel: str) -> bool:
    events = CGROUP_V2 / rel / "cgroup.events"
    return events.is_file() and "frozen 1" in events.read_text()


def remove(rel: str, timeout: float = 10.0) -> bool:
    """rmdir the cgroup tree depth-first in every hierarchy (it must be empty; retried, bounded)."""
    deadline = time.monotonic() + timeout
    for tree in trees():
        base = tree / rel
        while base.is_dir():
            for d, _, _ in sorted(os.walk(base), key=lambda w: -w[0].count("/")):
                with contextlib.suppress(OSError):
                    os.rmdir(d)
            if time.monotonic() > deadline:
                return False
            if base.is_dir():
                time.sleep(0.05)
    return True
