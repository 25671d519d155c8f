"""What status asks each role, and the readers that have no fact yet, on recorded answers."""

from __future__ import annotations

import json

import pytest
from recordings import load
from status_cases import CREDS, topology

from hastack.facts import crm_mon, galera_status, grastate, show_stat
from hastack.facts import rabbitmq as facts_rabbitmq
from hastack.facts.memcached import parse_memcached
from hastack.facts.pacemaker import parse_fail_counts
from hastack.status import rabbit
from hastack.status.bundle import Section, Task, parse_bundle
from hastack.status.probes import Credentials, read_host, tasks_for
from hastack.topology.model import Topology
from hastack.transport.base import Result


def sections(case: str, host: str) -> dict[str, Section]:
    topo, _ = topology(case)
    rec = load(f"status/{case}", host)
    return parse_bundle(host, tasks_for(topo, topo.node(host), CREDS), rec.stdout)


def names(tasks: list[Task]) -> list[str]:
    return [t.name for t in tasks]


def test_a_controller_is_asked_every_layer_it_runs(seed: Topology) -> None:
    tasks = tasks_for(seed, seed.node("ctl-1"), CREDS)
    assert names(tasks) == ["galera", "grastate", "haproxy", "addresses", "memcached", "rabbit_local",
                            "rabbit_alarms", "rabbit_nodes", "rabbit_queues", "units"]
    by = {t.name: t for t in tasks}
    assert by["galera"].argv == galera_status().argv and by["grastate"].argv == grastate().argv
    assert by["haproxy"].kind == "unix" and by["haproxy"].shown == show_stat().argv
    assert (by["memcached"].host, by["memcached"].port) == ("10.77.0.11", 11211)
    assert by["rabbit_nodes"].url.startswith("http://10.77.0.11:15672/api/nodes")
    units = by["units"].argv[5:]
    assert {"mariadb.service", "rabbitmq-server.service", "haproxy.service", "keepalived.service",
            "memcached.service", "keystone.service", "nova-api.service"} <= set(units)
    assert all(t.timeout <= 4 for t in tasks)


def test_without_the_rabbit_account_rabbitmqctl_is_the_fallback(seed: Topology) -> None:
    tasks = tasks_for(seed, seed.node("ctl-2"), Credentials())
    assert "rabbit" in names(tasks) and "rabbit_nodes" not in names(tasks)


def test_network_compute_and_arbitrator_roles(seed: Topology, four: Topology) -> None:
    net = tasks_for(seed, seed.node("net-1"), CREDS)
    assert names(net) == ["crm_mon", "units"]
    assert {"pacemaker.service", "corosync.service", "neutron-l3-agent.service"} <= set(net[1].argv[5:])
    assert names(tasks_for(seed, seed.node("cmp-1"), CREDS)) == ["units"]
    assert "corosync-qnetd.service" in tasks_for(seed, seed.node("ctl-3"), CREDS)[-1].argv
    garbd_host = next(n for n in four.garbd_nodes)
    assert "garbd.service" in tasks_for(four, garbd_host, CREDS)[-1].argv


def test_memcached_stats_recorded_from_the_lab() -> None:
    stats = parse_memcached(sections("healthy", "ctl-1")["memcached"].result)
    assert stats.answering and stats.stats["version"].startswith("1.6")
    refused = parse_memcached(sections("services-stopped", "ctl-1")["memcached"].result)
    assert not refused.answering and "refused" in refused.error.lower()
    with pytest.raises(ValueError):
        parse_memcached(Result("h", ("tcp",), 0, "ERROR\r\n", ""))


def test_fail_counts_from_crm_mon_history() -> None:
    rec = load("crm_mon", "failed-action")
    counts = parse_fail_counts(rec.stdout)
    assert [(c.node, c.resource, c.count, c.threshold, c.banned) for c in counts] == [
        ("net-1", "neutron-l3-agent", 1, 3, False)]
    assert parse_fail_counts(load("crm_mon", "lab-healthy").stdout) == ()


def test_rabbit_management_answers_recorded_in_the_lab() -> None:
    healthy = rabbit.read(sections("healthy", "ctl-1"))
    assert healthy is not None and healthy.local and healthy.view is not None
    assert sorted(healthy.view.running_nodes) == ["rabbit@ctl-1", "rabbit@ctl-2", "rabbit@ctl-3"]
    assert healthy.queues is not None
    q = next(q for q in healthy.queues if q.quorum)
    assert (q.vhost, q.name, q.has_leader, q.below_quorum, q.offline) == ("keystone", "status-q1", True, False, ())


def test_rabbit_app_stopped_refuses_the_management_api() -> None:
    stopped = rabbit.read(sections("services-stopped", "ctl-3"))
    assert stopped is not None and stopped.local is False and "does not answer" in stopped.local_error
    assert stopped.view is None and stopped.queues is None


def test_rabbit_waiting_for_a_powered_off_member_times_out_its_views() -> None:
    waiting = rabbit.read(sections("ctl1-off-early", "ctl-2"))
    assert waiting is not None and waiting.local is True
    assert waiting.view is None and waiting.view_slow and waiting.queues_slow


def test_rabbit_alarm_health_check() -> None:
    body = json.dumps({"status": "failed", "reason": "There are alarms in effect in the cluster",
                       "alarms": [{"node": "rabbit@ctl-2", "resource": "memory"}]})
    assert [(a.node, a.resource) for a in facts_rabbitmq.parse_alarms(body)] == [("rabbit@ctl-2", "memory")]
    assert facts_rabbitmq.parse_alarms('{"status":"ok"}') == ()
    with pytest.raises(ValueError):
        facts_rabbitmq.parse_alarms("[]")


def test_rabbit_nodes_partitions_and_alarms() -> None:
    doc = [{"name": "rabbit@ctl-1", "type": "disc", "running": True, "partitions": ["rabbit@ctl-3"],
            "mem_alarm": True, "disk_free_alarm": False},
           {"name": "rabbit@ctl-3", "type": "disc", "running": False}]
    view = facts_rabbitmq.parse_mgmt_nodes(json.dumps(doc))
    assert view.running_nodes == ("rabbit@ctl-1",) and view.members == ("rabbit@ctl-1", "rabbit@ctl-3")
    assert view.partitions == {"rabbit@ctl-1": ("rabbit@ctl-3",)}
    assert [(a.node, a.resource) for a in view.alarms] == [("rabbit@ctl-1", "memory")]


def test_rabbitmqctl_fallback_uses_the_fact_parser() -> None:
    rec = load("rabbitmqctl", "cluster_status-node-down")
    s = {"rabbit": Section(rec.result("ctl-1"))}
    facts = rabbit.read(s)
    assert facts is not None and facts.local and facts.view is not None
    assert facts.view.stopped_nodes == ("rabbit@ctl-3",) and facts.queues is None
    down = rabbit.read({"rabbit": Section(load("rabbitmqctl", "cluster_status-unreachable").result())})
    assert down is not None and down.local is False


def test_read_host_keeps_every_section_and_its_problems() -> None:
    facts = read_host(sections("healthy", "ctl-1"))
    assert facts.galera is not None and facts.galera.synced
    assert facts.grastate_read and facts.haproxy is not None and facts.haproxy.available
    assert facts.addresses is not None and facts.addresses.holds("10.79.0.10")
    assert facts.unit("mariadb") is not None and facts.problems == ()


def test_a_section_that_timed_out_or_cannot_be_read_is_a_problem_not_a_guess() -> None:
    s = sections("healthy", "net-1")
    slow = Section(Result("net-1", crm_mon().argv, 124, "", "no answer within 4s\n"), timed_out=True)
    facts = read_host({**s, "crm_mon": slow})
    assert facts.crm is None and [(p.section, p.timed_out) for p in facts.problems] == [("crm_mon", True)]
    garbage = Section(Result("net-1", crm_mon().argv, 0, "<other/>", ""))
    facts = read_host({**s, "crm_mon": garbage})
    assert facts.crm is None and facts.problems[0].section == "crm_mon" and not facts.problems[0].timed_out
