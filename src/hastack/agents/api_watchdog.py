#!/usr/bin/python3
"""hastack API watchdog, run on each controller and network node as hastack-api-watchdog.service.

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

On a network node the same program guards the Neutron agents that Pacemaker runs, with three rules:
the server's view of their heartbeats (`silent_agents`), a main process stopped (SIGSTOP) in two
checks in a row, and the log guard above for the agents' "State report for this agent will be
disabled" (they stop their heartbeat for good). Such a unit is never restarted behind Pacemaker's
back: its main process is killed, and Pacemaker's monitor recovers the resource as after any crash
(see `kill_main`).

This file is copied to the node and run by the node's own Python 3 (standard library only).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    via: str = "systemd"
    """Who restarts the unit: "systemd", or "pacemaker" for a cluster resource (see `kill_main`)."""


OSLO_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? (\d+) ")
"""oslo.log's default format: date, time, PID, level, logger."""
TAIL_BYTES = 256 * 1024


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
    """The log lines that say a process of the unit's current run gave up: non-empty means restart.
    Each PID is asked about once."""
    current: dict[int, bool] = {}
    hits: list[str] = []
    for line in tail(guard.log):
        m = OSLO_LINE.match(line)
        if not m or guard.text not in line:
            continue
        pid = int(m.group(1))
        if pid not in current:
            current[pid] = alive(pid, guard.unit)
        if current[pid]:
            hits.append(line.rstrip("\n"))
    return hits


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


def unit_pids(unit: str) -> list[str]:
    """The PIDs in the unit's cgroup now (none when it does not run)."""
    cgroup = run(["systemctl", "show", "-p", "ControlGroup", "--value", f"{unit}.service"]).strip()
    # cgroup v2 alone, or systemd's hybrid layout (as inside the lab's containers)
    found = [p for p in (Path(f"/sys/fs/cgroup{d}{cgroup}/cgroup.procs") for d in ("", "/unified", "/systemd"))
             if cgroup and p.exists()]
    try:
        return found[0].read_text().split() if found else []
    except OSError:
        return []


def proc_state(pid: str) -> str:
    """The one-letter state of /proc/PID/stat ("" when the process is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def main_pid(unit: str) -> str:
    """systemd's main PID of the unit ("" when it has none)."""
    pid = run(["systemctl", "show", "-p", "MainPID", "--value", f"{unit}.service"]).strip()
    return pid if pid.isdigit() and pid != "0" else ""


def frozen(pid: str, state: Callable[[str], str] = proc_state) -> bool:
    """The unit's main process is stopped (SIGSTOP, state T): alive to systemd and to Pacemaker's
    systemd monitor, doing nothing. Its children do not count: the DHCP agent's dnsmasq and the
    metadata proxies keep running while the agent that manages them is frozen."""
    return bool(pid) and state(pid) in ("T", "t")


def evidence(unit: str, log: str) -> list[str]:
    """What the unit's processes wait on, their TCP peers and the tail of the service's log."""
    lines: list[str] = []
    pids = unit_pids(unit)
    for pid in pids:
        try:
            stat = proc_state(pid)
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


def kill_main(unit: str, pid: str) -> None:
    """A unit Pacemaker runs is never restarted behind its back: its stuck main process is killed
    (SIGKILL), which Pacemaker's next monitor of the resource sees as a crash, and recovers as one:
    stop and start in place (that agent alone: the agents are ordered after the cleanup resource,
    not after each other), one failure counted toward migration-threshold, so a unit that keeps
    failing moves the agents to the other node.
    (`crm_resource --fail` was tried first: Pacemaker 2.1.5 counted each report as two failures, so
    the second fault moved the agents.)"""
    if not pid or not in_unit(int(pid), unit):
        print(f"{unit}: main process {pid or '-'} gone already", flush=True)
        return
    try:
        os.kill(int(pid), signal.SIGKILL)
        print(f"{unit}: killed its main process {pid}; Pacemaker's monitor recovers the resource", flush=True)
    except OSError as exc:
        print(f"{unit}: could not kill its main process {pid}: {exc}", flush=True)


@dataclass
class FrozenWatch:
    """Counts each watched unit's frozen checks in a row; says when one is due."""

    checks: int
    seen: dict[str, int] = field(default_factory=dict)

    def due(self, unit: str, is_frozen: bool) -> bool:
        self.seen[unit] = self.seen.get(unit, 0) + 1 if is_frozen else 0
        if self.seen[unit] < self.checks:
            return False
        self.seen[unit] = 0
        return True


@dataclass
class Hold:
    """One recovery per run of a unit: after the watchdog acted on a unit, it leaves it alone while
    the unit's main PID is the one it acted on, for up to `hold_s` (Pacemaker's stop and start of an
    agent take seconds; reporting it failed again meanwhile would count failures toward
    migration-threshold and move all the agents for one fault)."""

    hold_s: float
    acted: dict[str, tuple[str, float]] = field(default_factory=dict)

    def allows(self, unit: str, pid: str, now: float) -> bool:
        last = self.acted.get(unit)
        return last is None or last[0] != pid or now - last[1] >= self.hold_s

    def record(self, unit: str, pid: str, now: float) -> None:
        self.acted[unit] = (pid, now)


HOLD_S = 120.0


def recover(unit: str, via: str, why: list[str], hold: Hold) -> None:
    """Restart the unit (or, for a Pacemaker resource, kill its main process) and say why, once per
    run (see Hold)."""
    pid, now = main_pid(unit), time.monotonic()
    if not hold.allows(unit, pid, now):
        return
    hold.record(unit, pid, now)
    for line in why:
        print(f"{unit}: {line}", flush=True)
    if via == "pacemaker":
        kill_main(unit, pid)
    else:
        restart(unit, wait=False)


def parse_ages(text: str) -> dict[str, int]:
    """`mariadb --batch --skip-column-names` rows of (binary, seconds since its last report)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and parts[1].strip().lstrip("-").isdigit():
            out[parts[0].strip()] = int(parts[1])
    return out


def silent_agents(ages: dict[str, int], running: dict[str, float | None], stale_s: float, fresh_s: float,
                  grace_s: float) -> list[tuple[str, int]]:
    """The agents to recover, from the server's view: an agent this node runs (active for longer than
    `grace_s`) whose last report the server recorded more than `stale_s` ago, while another agent of
    the same shared identity reported within `fresh_s`. That peer shows the server takes reports from
    this host (its broker path and its workers are fine): the silence is the agent's own. When every
    agent is silent (the controllers or the brokers away), nothing is done: a restart cannot help."""
    out = []
    for unit, active in running.items():
        age = ages.get(unit)
        if active is None or active < grace_s or age is None or age <= stale_s:
            continue
        if any(a < fresh_s for b, a in ages.items() if b != unit):
            out.append((unit, age))
    return out


def heartbeat_round(conf: dict[str, Any], hold: Hold) -> None:
    """Ask the database (through the VIP, the watch account's three columns) and recover the silent
    agents. No answer, no action."""
    units = [str(u) for u in conf["units"]]
    res = run(["mariadb", f"--defaults-extra-file={conf['defaults']}", "--batch", "--skip-column-names",
               "-e", str(conf["query"])], timeout=10)
    ages = parse_ages(res)
    if not ages:
        return
    props = parse_show(run(["systemctl", "show", "-p", "Id", "-p", "ActiveState", "-p",
                            "ActiveEnterTimestampMonotonic", *[f"{u}.service" for u in units]]))
    now = time.monotonic_ns() // 1000
    running = {u: active_for(props.get(u, {}), now) for u in units}
    for unit, age in silent_agents(ages, running, conf["stale_s"], conf["fresh_s"], conf["grace_s"]):
        peers = ", ".join(f"{b} {a} s" for b, a in sorted(ages.items()) if b != unit)
        recover(unit, "pacemaker", [f"Neutron last heard from it {age} s ago (peers: {peers}): recovering it"],
                hold)


def main() -> int:
    conf = json.loads(Path(sys.argv[1] if len(sys.argv) > 1 else CONF).read_text())
    apis = [Api(a["unit"], a["url"], a.get("log", "")) for a in conf["apis"]]
    guards = [LogGuard(g["unit"], g["log"], g["text"], g.get("via", "systemd")) for g in conf.get("log_guards", [])]
    freeze = [(f["unit"], f.get("via", "systemd")) for f in conf.get("frozen", [])]
    watch = FrozenWatch(conf.get("frozen_checks", 2))
    hold = Hold(conf.get("hold_s", HOLD_S))
    judge = Judge(conf["failures"], conf["grace_s"])
    silence = conf["failures"] * conf["interval_s"]
    if apis:
        print(f"watching {len(apis)} API(s): restart after ~{silence} s without an HTTP answer, "
              f"{conf['grace_s']} s after a unit starts", flush=True)
    for g in guards:
        print(f"guarding {g.unit}: {g.via} recovers it when its current run logs {g.text!r} in {g.log}",
              flush=True)
    for unit, via in freeze:
        print(f"guarding {unit}: {via} recovers it when its main process stays stopped for "
              f"{watch.checks} checks", flush=True)
    beats = conf.get("heartbeats")
    if beats:
        print(f"guarding {', '.join(beats['units'])}: pacemaker recovers one that Neutron last heard from more "
              f"than {beats['stale_s']} s ago while a peer reported within {beats['fresh_s']} s", flush=True)
    next_beat = 0.0
    while True:
        started = time.monotonic()
        if beats and started >= next_beat:
            next_beat = started + beats["every_s"]
            heartbeat_round(beats, hold)
        for api, age in check_round(apis, judge, conf["timeout_s"]):
            print(f"{api.unit}: no HTTP answer from {api.url} for ~{silence} s ({conf['failures']} checks) "
                  f"while active for {age:.0f} s: restarting it", flush=True)
            for line in evidence(api.unit, api.log):
                print(f"{api.unit}:   {line}", flush=True)
            restart(api.unit)
        for guard in guards:
            hits = guard_hits(guard)
            if hits:
                recover(guard.unit, guard.via, [
                    f"its running process logged {guard.text!r} ({len(hits)} time(s)): recovering it",
                    f"  log: {hits[-1][:400]}"], hold)
        for unit, via in freeze:
            if watch.due(unit, frozen(main_pid(unit))):
                recover(unit, via, [f"its main process stopped (state T) for {watch.checks} checks: "
                                          "recovering it"], hold)
        time.sleep(max(0.0, conf["interval_s"] - (time.monotonic() - started)))


if __name__ == "__main__":
    sys.exit(main())
