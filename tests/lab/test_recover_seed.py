"""Lab tier, destructive (sorts after the other seed-lab modules): bring Galera back after every
controller stopped, and the whole control plane back after a power loss of every controller."""

from __future__ import annotations

import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pymysql
import pytest

from hastack.secrets import Secrets, secrets_path
from seedcloud import until
from seedlab import CONTROLLERS, HASTACK, ROOT, VIP, hastack, on, sql

pytestmark = pytest.mark.lab


def connect(topo: Path, host: str = VIP) -> pymysql.Connection:  # type: ignore[type-arg]
    pw = Secrets.load(secrets_path(topo, "seed")).password("db/hastack_probe")
    return pymysql.connect(host=host, user="hastack_probe", password=pw, database="hastack_probe",
                           connect_timeout=5, autocommit=True)


def write(topo: Path, tag: str, timeout: float = 60) -> str:
    """One acknowledged write through the VIP (the commit returned), retried like a real client
    while HAProxy moves the writer to a backup (bounded)."""
    marker = f"{tag}-{time.time_ns()}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = connect(topo)
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE IF NOT EXISTS recover (id VARCHAR(64) PRIMARY KEY)")
                cur.execute("INSERT IGNORE INTO recover VALUES (%s)", (marker,))
            conn.close()
            return marker
        except pymysql.err.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def node_state(topo: Path) -> dict[str, str]:
    """What a dry run must leave untouched: each node's grastate.dat and its mariadb unit state."""
    return {n: on(topo, n, "cat", "/var/lib/mysql/grastate.dat") + on(topo, n, "systemctl", "is-active", "mariadb",
                                                                        check=False) for n in CONTROLLERS}


def all_present(topo: Path, markers: list[str]) -> None:
    for n in CONTROLLERS:
        have = set(sql(topo, n, "SELECT id FROM hastack_probe.recover").split())
        assert set(markers) <= have, f"{n} lacks {set(markers) - have}"


def test_clean_stop_in_turn_bootstraps_the_last_one_out(seed_lab: Path) -> None:
    """ctl-1, ctl-2, ctl-3 stop in that order with a write before each stop: only ctl-3, last out and
    most advanced but not first in the topology, is safe, and the plan must pick it."""
    markers = []
    for n in CONTROLLERS:
        markers.append(write(seed_lab, n))
        on(seed_lab, n, "systemctl", "stop", "mariadb")
    before = node_state(seed_lab)
    dry = hastack("recover", "galera", str(seed_lab), "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "decision: ctl-3 has the highest committed position" in dry.stdout
    assert node_state(seed_lab) == before, "--dry-run changed a node"
    res = hastack("recover", "galera", str(seed_lab), "--yes")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ctl-3: bootstrapped" in res.stdout
    all_present(seed_lab, markers)


LATE_S = 10
"""The last controller comes back this long after `recover` started, so recover begins with one node it
cannot reach and must reach it once it is up (a booting node refuses SSH for a moment: recover used to
keep that first refusal for its whole run and gave up after 300 s)."""


def test_power_loss_of_every_controller(seed_lab: Path) -> None:
    markers = [write(seed_lab, f"pl{i}") for i in range(5)]
    for n in CONTROLLERS:
        assert hastack("lab", "power", "-t", str(seed_lab), n, "off").returncode == 0
    t0 = time.monotonic()
    *first, last = CONTROLLERS
    for n in first:
        assert hastack("lab", "power", "-t", str(seed_lab), n, "on").returncode == 0
    recover = subprocess.Popen([*HASTACK, "recover", "all", str(seed_lab), "--yes"],
                               cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    try:
        time.sleep(LATE_S)  # the fault's timing, not a wait for a state
        assert hastack("lab", "power", "-t", str(seed_lab), last, "on").returncode == 0
        out, _ = recover.communicate(timeout=1800)
    finally:
        if recover.poll() is None:
            recover.kill()
    assert recover.returncode == 0, out
    print(out)
    print(f"power-on to recovered: {time.monotonic() - t0:.1f}s")
    assert re.search(r"decision: .*(ctl-\d)", out)
    all_present(seed_lab, markers)
    holders = [n for n in CONTROLLERS if f"{VIP}/" in on(seed_lab, n, "ip", "-4", "-o", "addr")]
    assert len(holders) == 1
    again = hastack("deploy", str(seed_lab), "--yes")
    assert again.returncode == 0 and "0 changed" in again.stdout, again.stdout + again.stderr


def test_backup_then_restore_brings_the_dropped_rows_back(seed_lab: Path) -> None:
    """Issue 16: rows written, a full backup, more rows, an incremental, one row after it, the table
    dropped; the restore of the incremental brings back exactly the rows of its chain on every
    controller, and the cloud is healthy again."""
    first = [write(seed_lab, f"bk{i}") for i in range(3)]
    full = hastack("backup", str(seed_lab))
    assert full.returncode == 0, full.stdout + full.stderr
    full_name = re.search(r"backup (\S+-full) \(full\) on (ctl-\d)", full.stdout)
    assert full_name, full.stdout
    second = [write(seed_lab, f"inc{i}") for i in range(2)]
    incr = hastack("backup", str(seed_lab), "--incremental")
    incr_name = re.search(rf"backup (\S+-incr) \(incr, on {full_name[1]}\) on {full_name[2]}", incr.stdout)
    assert incr.returncode == 0 and incr_name, incr.stdout + incr.stderr
    after = write(seed_lab, "after")  # not in any backup: the restore must not bring it
    sql(seed_lab, "ctl-1", "DROP TABLE hastack_probe.recover")
    listed = hastack("backups", str(seed_lab))
    assert listed.returncode == 0 and full_name[1] in listed.stdout and incr_name[1] in listed.stdout, listed.stdout
    before = node_state(seed_lab)
    dry = hastack("restore", incr_name[1], str(seed_lab), "--dry-run")
    assert dry.returncode == 0 and "prepare" in dry.stdout, dry.stdout + dry.stderr
    assert node_state(seed_lab) == before, "--dry-run changed a node"
    t0 = time.monotonic()
    res = hastack("restore", incr_name[1], str(seed_lab), "--yes")
    assert res.returncode == 0, res.stdout + res.stderr
    print(res.stdout, f"restore took {time.monotonic() - t0:.1f}s")
    all_present(seed_lab, first + second)
    for n in CONTROLLERS:
        assert after not in sql(seed_lab, n, "SELECT id FROM hastack_probe.recover")
    until("the cloud healthy after the restore", lambda: hastack("status", str(seed_lab)).returncode == 0, 600, 10)


def test_scheduled_backups_one_node_takes_each_and_the_timers_follow_the_topology(seed_lab: Path) -> None:
    """Issue 16: `backups:` in the topology gives every controller the timers; the timers' service,
    started on every controller at once (as the timers do), backs up on one node only, the last in
    the topology's order; without `backups:` the timers go again."""
    timers = ("hastack-db-backup-full.timer", "hastack-db-backup-incr.timer")
    scheduled = seed_lab.parent / ".seed-backups.yml"
    scheduled.write_text(seed_lab.read_text() + "backups: {full: 'Sun *-*-* 02:00:00', "
                         "incremental: '*-*-* 00/6:30:00', keep: 3}\n")
    try:
        dep = hastack("deploy", str(scheduled), "--yes", "--stage", "files", "--stage", "galera")
        assert dep.returncode == 0, dep.stdout + dep.stderr
        for n in CONTROLLERS:
            assert on(seed_lab, n, "systemctl", "is-active", *timers).split() == ["active", "active"]
        def held(n: str) -> set[str]:
            return set(on(seed_lab, n, "sh", "-c", "ls /var/backups/hastack-db 2>/dev/null; true").split())

        before = {n: held(n) for n in CONTROLLERS}
        with ThreadPoolExecutor(len(CONTROLLERS)) as pool:  # as the timers fire: every node at once
            list(pool.map(lambda n: on(seed_lab, n, "systemctl", "start", "hastack-db-backup@full.service"),
                          CONTROLLERS))
        new = {n: sorted(held(n) - before[n]) for n in CONTROLLERS}
        assert [n for n in CONTROLLERS if new[n]] == ["ctl-3"] and len(new["ctl-3"]) == 1, new
        assert new["ctl-3"][0].endswith("-full"), new
        said = on(seed_lab, "ctl-1", "journalctl", "-u", "hastack-db-backup@full.service", "-o", "cat", "-n", "20")
        assert "10.77.0.13 takes it" in said, said
    finally:
        scheduled.unlink(missing_ok=True)
        back = hastack("deploy", str(seed_lab), "--yes", "--stage", "files", "--stage", "galera")
    assert back.returncode == 0 and "removed hastack-db-backup-full.timer" in back.stdout, back.stdout + back.stderr
    for n in CONTROLLERS:
        gone = on(seed_lab, n, "sh", "-c", "ls /etc/systemd/system/hastack-db-backup-*.timer 2>/dev/null; true")
        assert gone.strip() == "", (n, gone)
