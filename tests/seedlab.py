"""Helpers for lab-tier tests on the seed topology (examples/seed.yml)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "seed.yml"
CONTROLLERS = ("ctl-1", "ctl-2", "ctl-3")
VIP = "10.77.0.10"


def hastack(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hastack.cli.main", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


def on(topo: Path, node: str, *argv: str, check: bool = True) -> str:
    # like ssh(1), `lab ssh` hands the remote shell one command line
    res = hastack("lab", "ssh", "-t", str(topo), node, "--", shlex.join(argv), timeout=300)
    if check:
        assert res.returncode == 0, f"{node}: {argv}: {res.stdout}{res.stderr}"
    return res.stdout


def sql(topo: Path, node: str, query: str) -> str:
    return on(topo, node, "mariadb", "-N", "-B", "-e", query)
