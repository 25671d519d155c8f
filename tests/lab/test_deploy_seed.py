"""Lab tier: deploy examples/seed.yml on real daemons, then read the result directly from the nodes."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pymysql
import pytest

from hastack.secrets import Secrets, secrets_path
from seedlab import hastack, on, sql

pytestmark = pytest.mark.lab


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


def test_rabbitmq_net_ticktime_in_effect(seed_lab: Path) -> None:
    """The topology's net_ticktime (the default, 60) on every running broker (set by the unit's drop-in).
    Right after a restart the node may still be in set_net_ticktime's transition toward it."""
    for node in ("ctl-1", "ctl-2", "ctl-3"):
        got = on(seed_lab, node, "rabbitmqctl", "-q", "eval", "net_kernel:get_net_ticktime().").strip()
        assert got in ("60", "{ongoing_change_to,60}"), (node, got)


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
    res = hastack("deploy", str(seed_lab), "--yes")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 changed" in res.stdout


def test_changed_haproxy_timing_restarts_haproxy_only_rolling(seed_lab: Path) -> None:
    """A variant of the topology (same name, so the same secrets and hosts) with one HAProxy timing changed."""
    variant = seed_lab.parent / ".seed-haproxy-variant.yml"
    variant.write_text(seed_lab.read_text() + "tuning:\n  haproxy: {check_inter_ms: 700}\n")
    try:
        res = hastack("deploy", str(variant), "--yes")
        assert res.returncode == 0, res.stdout + res.stderr
        restarts = re.findall(r"\] (\S+): restarted (\S+)", res.stdout)
        assert restarts == [("ctl-1", "haproxy"), ("ctl-2", "haproxy"), ("ctl-3", "haproxy")]
        assert not re.search(r": started ", res.stdout)
    finally:
        variant.unlink()
        back = hastack("deploy", str(seed_lab), "--yes")
        assert back.returncode == 0, back.stdout + back.stderr
    assert re.findall(r"\] (\S+): restarted (\S+)", back.stdout) == [
        ("ctl-1", "haproxy"), ("ctl-2", "haproxy"), ("ctl-3", "haproxy")]
