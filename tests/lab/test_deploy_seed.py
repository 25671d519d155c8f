"""Lab tier: deploy examples/seed.yml on real daemons, then read the result directly from the nodes.

One lab for the whole module (bringing up three controllers costs minutes of CPU on 2 cores).
Tests that change something put it back and wait for health before the next one runs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from hastack.secrets import Secrets, secrets_path

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]


def hastack(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hastack.cli.main", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout)


@pytest.fixture(scope="module")
def seed_lab() -> Iterator[Path]:
    """The default topology, up and deployed (`lab up` resumes a lab that is already up, and deploy
    is idempotent, so a developer's running lab is reused). HASTACK_KEEP_LAB=1 keeps it afterwards."""
    topo = ROOT / "examples" / "seed.yml"
    up = hastack("lab", "up", str(topo))
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        dep = hastack("deploy", str(topo))
        print(dep.stdout)
        assert dep.returncode == 0, dep.stdout + dep.stderr
        yield topo
    finally:
        if not os.environ.get("HASTACK_KEEP_LAB"):
            down = hastack("lab", "down", str(topo))
            assert down.returncode == 0, down.stdout + down.stderr


def on(topo: Path, node: str, *argv: str) -> str:
    # like ssh(1), `lab ssh` hands the remote shell one command line
    res = hastack("lab", "ssh", "-t", str(topo), node, "--", shlex.join(argv), timeout=120)
    assert res.returncode == 0, f"{node}: {argv}: {res.stdout}{res.stderr}"
    return res.stdout


def sql(topo: Path, node: str, query: str) -> str:
    return on(topo, node, "mariadb", "-N", "-B", "-e", query)


def test_galera_every_vote_synced(seed_lab: Path) -> None:
    for node in ("ctl-1", "ctl-2", "ctl-3"):
        rows = sql(seed_lab, node, "SHOW GLOBAL STATUS LIKE 'wsrep_%'").splitlines()
        status = dict(line.split("\t") for line in rows)
        assert status["wsrep_cluster_size"] == "3"
        assert status["wsrep_local_state_comment"] == "Synced"
        assert status["wsrep_cluster_status"] == "Primary"


def test_rabbitmq_cluster_without_guest(seed_lab: Path) -> None:
    status = json.loads(on(seed_lab, "ctl-1", "rabbitmqctl", "-q", "cluster_status", "--formatter", "json"))
    assert sorted(status["running_nodes"]) == ["rabbit@ctl-1", "rabbit@ctl-2", "rabbit@ctl-3"]
    assert not status["partitions"]
    users = json.loads(on(seed_lab, "ctl-2", "rabbitmqctl", "-q", "list_users", "--formatter", "json"))
    assert "guest" not in {u["user"] for u in users}


def vip_holders(topo: Path) -> list[str]:
    return [n for n in ("ctl-1", "ctl-2", "ctl-3") if "10.77.0.10/" in on(topo, n, "ip", "-4", "-o", "addr")]


def test_vip_on_exactly_one_controller(seed_lab: Path) -> None:
    assert len(vip_holders(seed_lab)) == 1


def probe_password(topo: Path) -> str:
    secrets = Secrets.load(secrets_path(topo, "seed"))
    return secrets.password("db/hastack_probe")


def test_write_through_vip_reads_back_everywhere(seed_lab: Path) -> None:
    marker = f"m{time.time_ns()}"
    conn = pymysql.connect(host="10.77.0.10", user="hastack_probe", password=probe_password(seed_lab),
                           database="hastack_probe", connect_timeout=5, autocommit=True)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS t (id VARCHAR(64) PRIMARY KEY)")
        cur.execute("INSERT INTO t VALUES (%s)", (marker,))
    conn.close()
    for node in ("ctl-1", "ctl-2", "ctl-3"):
        assert marker in sql(seed_lab, node, "SELECT id FROM hastack_probe.t")


def test_pacemaker_group_on_one_node_with_fencing(seed_lab: Path) -> None:
    xml = on(seed_lab, "net-1", "crm_mon", "-1", "--output-as=xml")
    assert re.search(r'<node name="net-1"[^>]*online="true"', xml)
    assert re.search(r'<node name="net-2"[^>]*online="true"', xml)
    for fence in ("fence-net-1", "fence-net-2"):
        assert re.search(rf'<resource id="{fence}"[^>]*active="true"', xml)
    hosts = set(re.findall(r'<resource id="neutron-l3-agent"[^>]*>\s*<node name="([^"]+)"', xml))
    assert len(hosts) == 1


def test_second_deploy_changes_nothing(seed_lab: Path) -> None:
    res = hastack("deploy", str(seed_lab))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 changed" in res.stdout


def test_changed_haproxy_timing_restarts_haproxy_only_rolling(seed_lab: Path) -> None:
    """A variant of the topology (same name, so the same secrets and hosts) with one HAProxy timing changed."""
    variant = seed_lab.parent / ".seed-haproxy-variant.yml"
    variant.write_text(seed_lab.read_text() + "tuning:\n  haproxy: {check_inter_ms: 700}\n")
    try:
        res = hastack("deploy", str(variant))
        assert res.returncode == 0, res.stdout + res.stderr
        restarts = re.findall(r"\] (\S+): restarted (\S+)", res.stdout)
        assert restarts == [("ctl-1", "haproxy"), ("ctl-2", "haproxy"), ("ctl-3", "haproxy")]
        assert not re.search(r": started ", res.stdout)
    finally:
        variant.unlink()
        back = hastack("deploy", str(seed_lab))
        assert back.returncode == 0, back.stdout + back.stderr
    assert re.findall(r"\] (\S+): restarted (\S+)", back.stdout) == [
        ("ctl-1", "haproxy"), ("ctl-2", "haproxy"), ("ctl-3", "haproxy")]
