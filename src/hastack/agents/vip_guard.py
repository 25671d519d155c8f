#!/usr/bin/python3
"""hastack VIP guard, run on each controller as hastack-vip-guard.service: keepalived's watchdog.

keepalived has no liveness watchdog of its own. A master whose keepalived is frozen (SIGSTOP, a
debugger, a cgroup freeze of that service) sends no more adverts: within 3 advert intervals a backup
takes the VIP, while the frozen master still has the address on its interface. The VIP is then on
two nodes: both answer ARP for it, and when the frozen one continues it is still master with the
higher priority and takes the VIP back (a second move). The campaign's `stop-keepalived-vip`
nemesis checks it.

Rule: every POLL_S, if every process of keepalived's unit is stopped (state T or t in
/proc/<pid>/stat), kill the unit with SIGKILL. The unit's drop-in (components/keepalived.py) then
removes this node's VIPs (ExecStopPost) and restarts keepalived, which comes back as a backup: one
move, no second one. A stopped process is never a normal state for keepalived, so one look is
enough; POLL_S is below the backups' takeover time (3 x advert_int), so the frozen master loses its
addresses about when the new master adds them.

This file is copied to the node and run by the node's own Python 3 (standard library only).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

POLL_S = 0.1
UNIT = "keepalived.service"
CGROUPS = tuple(Path(root) / "system.slice" / UNIT for root in
                ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"))
"""Where systemd keeps the unit's processes: cgroup v2 (Debian 12's default), the hybrid layout's
unified tree, or the legacy name=systemd tree (what this project's lab containers see)."""


def state_of(stat: str) -> str:
    """The state field of /proc/<pid>/stat (after the parenthesised command name, which may hold spaces)."""
    return stat.rsplit(")", 1)[1].split()[0] if ")" in stat else ""


def all_stopped(states: Iterable[str]) -> bool:
    seen = list(states)
    return bool(seen) and all(s in ("T", "t") for s in seen)


def unit_pids(cgroup: Path | tuple[Path, ...]) -> list[int]:
    """The unit's processes from the first of the places that has them."""
    for c in (cgroup,) if isinstance(cgroup, Path) else cgroup:
        try:
            return [int(p) for p in (c / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            continue
    return []


def states(pids: Iterable[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            out.append(state_of(Path(f"/proc/{pid}/stat").read_text()))
        except OSError:  # exited between the two reads
            continue
    return out


def look(cgroup: Path | tuple[Path, ...], kill: Callable[[], None]) -> bool:
    """One look: True when keepalived was found frozen and killed."""
    if all_stopped(states(unit_pids(cgroup))):
        kill()
        return True
    return False


def kill_unit() -> None:
    print(f"every process of {UNIT} is stopped: killing it so its VIPs are released and it restarts as a backup",
          flush=True)
    subprocess.run(["systemctl", "kill", "--signal=KILL", UNIT], timeout=30, check=False)


def main() -> int:
    while True:
        if look(CGROUPS, kill_unit):
            time.sleep(5)  # let systemd restart it before looking again
        time.sleep(POLL_S)


if __name__ == "__main__":
    sys.exit(main())
