#!/usr/bin/python3
"""hastack API watchdog, run on each controller as hastack-api-watchdog.service.

Liveness, not readiness. HAProxy already takes a backend that answers badly out of the VIP's
rotation, and the VIP keeps serving from the other controllers; what nothing brings back is an API
process that is up but no longer answers at all. In CI, after a controller's power cycle, one API
(placement once, neutron-server once) on the returning controller stayed silent for more than 20
minutes while systemd called its unit active and running.

Rule: a unit that has been active for longer than `grace_s` and gave no HTTP answer (timeout,
refused, reset, empty reply; any HTTP status counts as an answer) to `failures` checks in a row,
`interval_s` apart, is restarted. Before the restart the watchdog logs what the unit's processes
were waiting on (state, wchan, TCP peers) and the last lines of the service's log, so the cause
can be read in the journal afterwards (`journalctl -u hastack-api-watchdog`).

Second rule, for a daemon that is alive but useless: a log guard names a unit, its log file and a
fixed text that the daemon logs when it gave up on something it never retries. When a line of the
log carries that text and the PID of a process still in the unit's cgroup (oslo.log writes the PID
as the third field), the unit is restarted. The case that needs it: ceilometer's notification
agent loads its Gnocchi publisher once, at start, and that needs a Keystone token; if Keystone does
not answer then (a controller's boot, measured in CI and in the lab on 2026-12-04: the token request
timed out 34 s after the agent's own wait for Keystone had passed), the agent logs "Unable to load
publisher gnocchi://" and consumes and drops every sample for its lifetime. The restart is what an
operator would do; the unit's own wait for the APIs then runs again.

This file is copied to the node and run by the node's own Python 3 (standard library only).
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

CONF = "/etc/hastack/api-watchdog.json"


@dataclass(frozen=True)
class Api:
    unit: str
    url: str
    log: str = ""


@dataclass(frozen=True)
class LogGuard:
    unit: str
    log: str
    text: str
    """A fixed string (not a pattern): what the daemon logs when it gave up for good."""


OSLO_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? (\d+) ")
"""oslo.log's default format: date, time, PID, level, logger."""
TAIL_BYTES = 256 * 1024


def logged_by(lines: Iterable[str], text: str) -> list[tuple[int, str]]:
    """(PID, line) of each oslo.log line that carries `text`."""
    out = []
    for line in lines:
        m = OSLO_LINE.match(line)
        if m and text in line:
            out.append((int(m.group(1)), line.rstrip("\n")))
    return out


def read_tail(path: str, size: int = TAIL_BYTES) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - size))
            return f.read().decode(errors="replace").splitlines()
    except OSError:
        return []


def in_unit(pid: int, unit: str) -> bool:
    """Whether the process is in the unit's cgroup now (a PID of an earlier run is gone or elsewhere)."""
    try:
        cgroups = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False
    return any(line.endswith(f"/{unit}.service") for line in cgroups.splitlines())


def guard_hits(guard: LogGuard, tail: Callable[[str], list[str]] = read_tail,
               alive: Callable[[int, str], bool] = in_unit) -> list[str]:
    """The log lines that say a process of the unit's current run gave up: non-empty means restart."""
    return [line for pid, line in logged_by(tail(guard.log), guard.text) if alive(pid, guard.unit)]


@dataclass
class Judge:
    """Counts each unit's silent checks in a row; says when one is due for a restart."""

    failures: int
    grace_s: float
    silent: dict[str, int] = field(default_factory=dict)

    def due(self, unit: str, answered: bool, active_for_s: float | None) -> bool:
        """`active_for_s` is None when the unit is not active: then it is systemd's business."""
        if answered or active_for_s is None or active_for_s < self.grace_s:
            self.silent[unit] = 0
            return False
        self.silent[unit] = self.silent.get(unit, 0) + 1
        if self.silent[unit] < self.failures:
            return False
        self.silent[unit] = 0
        return True


def answers(url: str, timeout: float) -> bool:
    """True when anything speaking HTTP answered, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, http.client.HTTPException):
        return False


def parse_show(text: str) -> dict[str, dict[str, str]]:
    """`systemctl show -p Id -p ...` of several units: one block per unit, blank-line separated."""
    out: dict[str, dict[str, str]] = {}
    for block in text.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "Id" in props:
            out[props["Id"].removesuffix(".service")] = props
    return out


def active_for(props: dict[str, str], now_us: int) -> float | None:
    """Seconds since the unit entered `active` (systemd's CLOCK_MONOTONIC stamp), None if not active."""
    if props.get("ActiveState") != "active":
        return None
    try:
        since = int(props.get("ActiveEnterTimestampMonotonic", "0"))
    except ValueError:
        return None
    return max(0.0, (now_us - since) / 1e6) if since else None


def run(argv: list[str], timeout: float = 30) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"({' '.join(argv)}: {exc})"


def evidence(unit: str, log: str) -> list[str]:
    """What the unit's processes wait on, their TCP peers and the tail of the service's log."""
    lines: list[str] = []
    cgroup = run(["systemctl", "show", "-p", "ControlGroup", "--value", f"{unit}.service"]).strip()
    # cgroup v2 alone, or systemd's hybrid layout (as inside the lab's containers)
    found = [p for p in (Path(f"/sys/fs/cgroup{d}{cgroup}/cgroup.procs") for d in ("", "/unified", "/systemd"))
             if cgroup and p.exists()]
    pids = found[0].read_text().split() if found else []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            wchan = Path(f"/proc/{pid}/wchan").read_text().strip() or "-"
            threads = len(list(Path(f"/proc/{pid}/task").iterdir()))
        except OSError:
            continue
        lines.append(f"pid {pid}: state {stat}, wchan {wchan}, {threads} threads")
    sockets = run(["ss", "-tnpH"])
    lines += [f"tcp {ln.split()[0]} {ln.split()[3]} -> {ln.split()[4]}" for ln in sockets.splitlines()
              if len(ln.split()) >= 5 and any(f"pid={p}," in ln for p in pids)][:40]
    if log and Path(log).exists():
        lines += [f"log: {ln}" for ln in run(["tail", "-n", "8", log]).splitlines()]
    return lines


def check_round(apis: Iterable[Api], judge: Judge, timeout: float,
                probe: Callable[[str, float], bool] = answers,
                show: Callable[[list[str]], str] | None = None,
                now_us: Callable[[], int] = lambda: time.monotonic_ns() // 1000) -> list[tuple[Api, float]]:
    """One look at every API: returns those due for a restart, with how long they were active."""
    apis = list(apis)
    if not apis:
        return []
    show = show or (lambda units: run(["systemctl", "show", "-p", "Id", "-p", "ActiveState", "-p",
                                       "ActiveEnterTimestampMonotonic", *[f"{u}.service" for u in units]]))
    with ThreadPoolExecutor(max_workers=len(apis)) as pool:
        answered = list(pool.map(lambda a: probe(a.url, timeout), apis))
    props = parse_show(show([a.unit for a in apis]))
    now = now_us()
    due: list[tuple[Api, float]] = []
    for api, ok in zip(apis, answered, strict=True):
        age = active_for(props.get(api.unit, {}), now)
        if judge.due(api.unit, ok, age):
            due.append((api, age or 0.0))
    return due


def restart(unit: str, *, wait: bool = True) -> None:
    """A guarded unit may wait minutes in its ExecStartPre (for the APIs): its restart is queued, not
    waited for, so the APIs' checks go on meanwhile."""
    rc = subprocess.run(["systemctl", "restart", *([] if wait else ["--no-block"]), f"{unit}.service"],
                        check=False).returncode
    print(f"{unit}: restart {'done' if rc == 0 else f'failed (exit {rc})'}", flush=True)


def main() -> int:
    conf = json.loads(Path(sys.argv[1] if len(sys.argv) > 1 else CONF).read_text())
    apis = [Api(a["unit"], a["url"], a.get("log", "")) for a in conf["apis"]]
    guards = [LogGuard(g["unit"], g["log"], g["text"]) for g in conf.get("log_guards", [])]
    judge = Judge(conf["failures"], conf["grace_s"])
    silence = conf["failures"] * conf["interval_s"]
    print(f"watching {len(apis)} API(s): restart after ~{silence} s without an HTTP answer, "
          f"{conf['grace_s']} s after a unit starts", flush=True)
    for g in guards:
        print(f"guarding {g.unit}: restart when its current run logs {g.text!r} in {g.log}", flush=True)
    while True:
        started = time.monotonic()
        for api, age in check_round(apis, judge, conf["timeout_s"]):
            print(f"{api.unit}: no HTTP answer from {api.url} for ~{silence} s ({conf['failures']} checks) "
                  f"while active for {age:.0f} s: restarting it", flush=True)
            for line in evidence(api.unit, api.log):
                print(f"{api.unit}:   {line}", flush=True)
            restart(api.unit)
        for guard in guards:
            hits = guard_hits(guard)
            if hits:
                print(f"{guard.unit}: its running process logged {guard.text!r}: restarting it", flush=True)
                print(f"{guard.unit}:   log: {hits[-1][:400]}", flush=True)
                restart(guard.unit, wait=False)
        time.sleep(max(0.0, conf["interval_s"] - (time.monotonic() - started)))


if __name__ == "__main__":
    sys.exit(main())
