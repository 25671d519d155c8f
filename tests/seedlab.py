"""Helpers for lab-tier tests on the seed topology (examples/seed.yml)."""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "seed.yml"
CONTROLLERS = ("ctl-1", "ctl-2", "ctl-3")
VIP = "10.77.0.10"


HASTACK = (sys.executable, "-m", "hastack.cli.main")
"""The command line of `hastack` in this checkout."""


def hastack(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HASTACK, *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


def on(topo: Path, node: str, *argv: str, check: bool = True) -> str:
    # like ssh(1), `lab ssh` hands the remote shell one command line
    res = hastack("lab", "ssh", "-t", str(topo), node, "--", shlex.join(argv), timeout=300)
    if check:
        assert res.returncode == 0, f"{node}: {argv}: {res.stdout}{res.stderr}"
    return res.stdout


def sql(topo: Path, node: str, query: str) -> str:
    return on(topo, node, "mariadb", "-N", "-B", "-e", query)


@contextlib.contextmanager
def own_lab(topo: Path, nodes: tuple[str, ...]) -> Iterator[Path]:
    """A module's own lab, deployed, with the seed lab down first (two full clouds do not fit a 2-core
    host). Afterwards every node in `nodes` is healed and powered on (whatever a failed test left
    behind), and the lab goes down unless HASTACK_KEEP_LAB is set."""
    if not os.environ.get("HASTACK_KEEP_LAB"):
        hastack("lab", "down", str(SEED))
    up = hastack("lab", "up", str(topo))
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        dep = hastack("deploy", str(topo), "--yes")
        print(dep.stdout[-3000:])
        assert dep.returncode == 0, dep.stdout + dep.stderr
        yield topo
    finally:
        for node in nodes:
            hastack("lab", "heal", node, "-t", str(topo))
            hastack("lab", "power", node, "on", "-t", str(topo))
        if not os.environ.get("HASTACK_KEEP_LAB"):
            down = hastack("lab", "down", str(topo))
            assert down.returncode == 0, down.stdout + down.stderr
