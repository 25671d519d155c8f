"""Helpers for lab-tier tests on the seed topology (examples/seed.yml)."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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
        hastack("lab", "down", "--fast", str(SEED))
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
            down = hastack("lab", "down", "--fast", str(topo))
            assert down.returncode == 0, down.stdout + down.stderr


# -- hastack status, polled -------------------------------------------------------------------------
Doc = dict[str, Any]


def status(topo: Path) -> tuple[int, Doc, float]:
    """`hastack status --json`: its exit code, its document and its wall time."""
    t0 = time.monotonic()
    res = hastack("status", str(topo), "--json", timeout=60)
    took = time.monotonic() - t0
    assert res.stdout.strip(), res.stderr
    return res.returncode, json.loads(res.stdout), took


def wait_for(topo: Path, what: str, ok: Callable[[int, Doc], bool], timeout: float = 300,
             nodes: tuple[str, ...] = CONTROLLERS) -> Doc:
    """Poll status until `ok` (bounded by time); fail with the last answer's summary."""
    deadline = time.monotonic() + timeout
    last: tuple[int, Doc] = (-1, {})
    while time.monotonic() < deadline:
        code, doc, _ = status(topo)
        last = (code, doc)
        if ok(code, doc):
            return doc
        time.sleep(2)
    raise AssertionError(f"status never showed {what} within {timeout:.0f}s; last: exit {last[0]}, "
                         f"{last[1].get('summary')}\n{evidence(topo, nodes)}")


EVIDENCE = ("systemctl show -p ActiveState -p SubState -p NRestarts -p ActiveEnterTimestamp keystone mariadb | "
            "tr '\\n' ' '; echo; journalctl -u keystone -n 8 --no-pager -o short-monotonic; "
            "tail -n 8 /var/log/keystone/keystone.log | cut -c 1-300; "
            "journalctl -u hastack-api-watchdog -n 8 --no-pager -o cat | cut -c 1-300")


def evidence(topo: Path, nodes: tuple[str, ...] = CONTROLLERS) -> str:
    """Each controller's keystone and watchdog, for a failed wait (the CI host's lab is gone afterwards)."""
    out = []
    for node in nodes:
        res = hastack("lab", "ssh", node, "-t", str(topo), "--", EVIDENCE, timeout=60)
        out.append(f"--- {node}\n{res.stdout[:4000]}{res.stderr[-500:]}")
    return "\n".join(out)


def healthy_again(topo: Path) -> None:
    """Healthy (exit 0) after a cut is healed. A cut of one controller for a few seconds can end while
    its peers' dead-peer watches drop it: the majority then keeps a RabbitMQ partition record that
    nothing clears (status: RABBIT-PARTITION, down; seen in the clean-clone rehearsal of 2026-12-08
    after the VIP cut tests, docs/reliability/ci-stop37/). It gets the documented remedy, said aloud;
    the watch healing it by itself is issue 13's open item. Polled: the record can appear a few seconds
    after the heal (the minority pauses and resumes first). Bounded: wait_for's 300 s, one remedy."""
    remedied: list[str] = []

    def healthy_or_remedied(code: int, doc: Doc) -> bool:
        if code == 0:
            return True
        if "RABBIT-PARTITION" in codes(doc) and not remedied:
            remedied.append(finding(doc, "RABBIT-PARTITION")["message"])
            print(f"a RabbitMQ partition was recorded: {remedied[0]}; running `hastack recover rabbitmq`")
            res = hastack("recover", "rabbitmq", str(topo), "--yes", timeout=900)
            assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
        return False

    wait_for(topo, "healthy (exit 0)", healthy_or_remedied)


def codes(doc: Doc, node: str | None = None) -> set[str]:
    return {f["code"] for f in doc["findings"] if node is None or f["node"] == node}


def finding(doc: Doc, code: str) -> Doc:
    return next(f for f in doc["findings"] if f["code"] == code)
