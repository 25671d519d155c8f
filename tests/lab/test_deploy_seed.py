"""Lab tier: deploy examples/seed.yml on real daemons, then read the result directly from the nodes."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from hastack.secrets import Secrets, secrets_path
from seedcloud import until
from seedlab import CONTROLLERS, hastack, healthy_again, on, sql

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
    return [n for n in CONTROLLERS if "10.77.0.10/" in on(topo, n, "ip", "-4", "-o", "addr")]


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
    hosts = {rid: set(re.findall(rf'<resource id="{rid}"[^>]*>\s*<node name="([^"]+)"', xml))
             for rid in ("hastack-neutron-cleanup", "neutron-metadata-agent", "neutron-dhcp-agent", "neutron-l3-agent")}
    assert len(set.union(*hosts.values())) == 1 and all(len(h) == 1 for h in hosts.values()), hosts
    assert "<group " not in xml  # the agents are colocated primitives, started in parallel (issue 13)


def test_second_deploy_changes_nothing(seed_lab: Path) -> None:
    plan = hastack("plan", str(seed_lab))
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "plan: 0 change(s)" in plan.stdout and not re.search(r"^  [*!] ", plan.stdout, re.M), plan.stdout
    assert "= gate: 3 Galera votes in the cluster" in plan.stdout  # the gates are listed all the same
    res = hastack("deploy", str(seed_lab), "--yes")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 changed" in res.stdout


def planned_changes(text: str) -> list[str]:
    """The plan's change lines: '~ path' per changed file, '* host: step' per stage step."""
    return re.findall(r"^  ([~*!] .*)$", text, re.M)


def test_the_plan_names_the_sql_drift_deploy_then_repairs(seed_lab: Path) -> None:
    """A grant revoked and a password changed by hand: the plan lists exactly those two, deploy
    writes exactly those two, and the plan is empty again."""
    on(seed_lab, "ctl-1", "mariadb", "-e", "REVOKE ALL PRIVILEGES ON glance.* FROM 'glance'@'%'; "
                                           "ALTER USER 'placement'@'%' IDENTIFIED BY 'not-the-secret';")
    plan = hastack("plan", str(seed_lab))
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert planned_changes(plan.stdout) == ["* ctl-1: set the password of SQL user placement",
                                            "* ctl-1: grant glance all on glance"], plan.stdout[-3000:]
    res = hastack("deploy", str(seed_lab), "--yes")
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.findall(r"\] ctl-1: (set the password of SQL user \S+|granted .*)$", res.stdout, re.M) == [
        "set the password of SQL user placement", "granted glance all on glance"], res.stdout[-3000:]
    assert "2 changed" in res.stdout
    assert "plan: 0 change(s)" in hastack("plan", str(seed_lab)).stdout


AGENT_IDS = ("hastack-neutron-cleanup", "neutron-metadata-agent", "neutron-dhcp-agent", "neutron-l3-agent")
REGROUP = ("set -e\n"
           "old=$(crm configure show | awk '/^(order|colocation|tag) /{print $2}')\n"
           '{ for i in $old; do echo "delete $i"; done; '
           f'echo "group neutron-agents {" ".join(AGENT_IDS)}"; echo commit; }} | crm configure\n')
"""The agents as hastack configured them before they became a set: one group (what a cluster deployed
by an earlier hastack holds)."""


def agent_pids(topo: Path, node: str) -> dict[str, str]:
    return {u: on(topo, node, "systemctl", "show", "-P", "MainPID", u).strip() for u in AGENT_IDS[1:]}


def test_a_deploy_over_the_group_of_before_restarts_no_agent(seed_lab: Path) -> None:
    """The migration from the group: deploy deletes it on a copy of the CIB and replaces the
    configuration in one write; crmsh's `delete --force` on the live CIB had stopped every agent."""
    node = on(seed_lab, "net-1", "crm_resource", "--locate", "-r", "neutron-l3-agent").split()[-1]
    on(seed_lab, "net-1", "sh", "-c", REGROUP)
    until("the agents running in the group", lambda: re.search(
        r"Resource Group: neutron-agents:(\n.*Started.*){4}", on(seed_lab, "net-1", "crm_mon", "-1")), 60)
    before = agent_pids(seed_lab, node)
    assert all(p != "0" for p in before.values()), before
    res = hastack("deploy", str(seed_lab), "--yes")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "deleted neutron-agents" in res.stdout, res.stdout
    shown = on(seed_lab, "net-1", "crm", "configure", "show")
    assert "group " not in shown and "tag neutron-agents" in shown, shown
    assert agent_pids(seed_lab, node) == before
    assert "Stopped" not in on(seed_lab, "net-1", "crm_mon", "-1")


def test_changed_haproxy_timing_reloads_haproxy_only_rolling(seed_lab: Path) -> None:
    """A variant of the topology (same name, so the same secrets and hosts) with one HAProxy timing
    changed: HAProxy is reloaded (not restarted: its open connections stay) on each controller in
    turn, and nothing else restarts or starts."""
    variant = seed_lab.parent / ".seed-haproxy-variant.yml"
    variant.write_text(seed_lab.read_text() + "tuning:\n  haproxy: {check_inter_ms: 700}\n")
    want = [("ctl-1", "reloaded", "haproxy"), ("ctl-2", "reloaded", "haproxy"), ("ctl-3", "reloaded", "haproxy")]
    cfg = "sha256sum /etc/haproxy/haproxy.cfg; systemctl show -P MainPID haproxy"
    try:
        before = {n: on(seed_lab, n, "sh", "-c", cfg) for n in CONTROLLERS}
        dry = hastack("deploy", str(variant), "--dry-run")
        assert dry.returncode == 0, dry.stdout + dry.stderr
        steps = planned_changes(dry.stdout)
        assert [x for x in steps if x.startswith("~")] == ["~ /etc/haproxy/haproxy.cfg: update (root:haproxy 0640)"] * 3
        assert [x.split(" (")[0] for x in steps if not x.startswith("~")] == [
            f"* {n}: reload haproxy" for n in CONTROLLERS], dry.stdout[-3000:]
        assert {n: on(seed_lab, n, "sh", "-c", cfg) for n in CONTROLLERS} == before, "--dry-run changed a host"
        res = hastack("deploy", str(variant), "--yes")
        assert res.returncode == 0, res.stdout + res.stderr
        assert re.findall(r"\] (\S+): (restarted|reloaded) (\S+)", res.stdout) == want, res.stdout[-3000:]
        assert not re.search(r": started ", res.stdout)
    finally:
        variant.unlink()
        back = hastack("deploy", str(seed_lab), "--yes")
        assert back.returncode == 0, back.stdout + back.stderr
    assert re.findall(r"\] (\S+): (restarted|reloaded) (\S+)", back.stdout) == want, back.stdout[-3000:]


def vrrp_states(topo: Path, node: str, since: float) -> list[tuple[float, str]]:
    """keepalived's state changes on `node` since `since` (epoch seconds), with the journal's own
    microsecond times: every container logs against the same kernel clock, so they compare."""
    out = on(topo, node, "journalctl", "-u", "keepalived", "--since", f"@{since:.6f}", "-o", "json",
             "--no-pager", "--output-fields=MESSAGE,__REALTIME_TIMESTAMP")
    states = []
    for line in out.splitlines():
        entry = json.loads(line)
        m = re.search(r"Entering (\w+) STATE", str(entry.get("MESSAGE", "")))
        if m:
            states.append((int(entry["__REALTIME_TIMESTAMP"]) / 1e6, m.group(1)))
    return states


@contextlib.contextmanager
def cut_from_the_others(topo: Path, node: str) -> Iterator[list[str]]:
    others = [n for n in CONTROLLERS if n != node]
    res = hastack("lab", "cut", node, *(a for o in others for a in ("--peer", o)), "-t", str(topo))
    assert res.returncode == 0, res.stdout + res.stderr
    try:
        yield others
    finally:
        healed = hastack("lab", "heal", node, "-t", str(topo))
        assert healed.returncode == 0, healed.stdout + healed.stderr
        until("the quorum watch back to 0 and the VIP on one controller",
              lambda: on(topo, node, "cat", "/run/hastack-vip-quorum").strip() == "0"
              and len(vip_holders(topo)) == 1, timeout=30, interval=0.2)
    healthy_again(topo)  # the next module starts from a healthy lab (a cut can leave a RabbitMQ partition)


def test_the_vip_holder_cut_from_the_others_lets_go_before_they_take_it(seed_lab: Path) -> None:
    """The partition-vip-controller nemesis, read from keepalived's own journals: the isolated
    holder is in FAULT (its quorum watch) before a controller of the majority becomes MASTER, so no
    instant had the VIP on two nodes."""
    [holder] = vip_holders(seed_lab)
    since = time.time()
    with cut_from_the_others(seed_lab, holder) as others:
        until("a new VIP holder among the majority", lambda: vip_holders(seed_lab) in ([o] for o in others),
              timeout=30, interval=0.2)
        fault = [t for t, s in vrrp_states(seed_lab, holder, since) if s == "FAULT"]
        master = [t for o in others for t, s in vrrp_states(seed_lab, o, since) if s == "MASTER"]
    assert fault and master, (fault, master)
    assert fault[0] < master[0], f"FAULT on {holder} {fault[0] - master[0]:+.3f} s after the new MASTER"


def test_a_backup_cut_from_the_others_never_takes_the_vip(seed_lab: Path) -> None:
    """Without the quorum watch it became MASTER after 3 adverts missed and announced itself by ARP."""
    [holder] = vip_holders(seed_lab)
    backup = next(n for n in CONTROLLERS if n != holder)
    since = time.time()
    with cut_from_the_others(seed_lab, backup):
        until(f"{backup} in FAULT", lambda: "FAULT" in {s for _, s in vrrp_states(seed_lab, backup, since)},
              timeout=30, interval=0.2)
        time.sleep(1)  # ten advert intervals: long past the takeover it must not make
        assert vip_holders(seed_lab) == [holder]
    assert "MASTER" not in {s for _, s in vrrp_states(seed_lab, backup, since)}
