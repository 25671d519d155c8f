"""Every verdict rule: on states recorded in the status lab, and on synthetic variants of them.

Tests assert codes, levels, nodes and exit codes, never the wording."""

from __future__ import annotations

from dataclasses import replace

import pytest
import status_cases as sc
from recordings import answer, load

from hastack.facts import CrmMon, CrmResource, GaleraStatus, UnitState, crm_mon, galera_status, grastate
from hastack.facts.pacemaker import FailCount
from hastack.facts.rabbitmq import Alarm, Queue
from hastack.reports import Report as Finding
from hastack.status.model import (
    ApiCheck,
    Catalog,
    ClusterState,
    GaleraNode,
    HostView,
    PacemakerNode,
    RabbitNode,
    ServiceRow,
    SqlCheck,
    UnitCheck,
)
from hastack.status.probes import Problem
from hastack.status.rabbit import RabbitFacts
from hastack.status.rules import evaluate
from hastack.status.verdict import Level, Verdict, finding


def verdict(s: ClusterState) -> Verdict:
    return evaluate(s)


def found(v: Verdict, code: str) -> list[Finding]:
    return [f for f in v.findings if f.code == code]


def one(v: Verdict, code: str) -> Finding:
    hits = found(v, code)
    assert len(hits) == 1, (code, v.codes())
    return hits[0]


def problems(v: Verdict) -> set[str]:
    return {f.code for f in v.problems}


# The status lab's recordings were made with the agent group running (a placeholder cleanup unit);
# its topology runs no neutron, so the group's members are given as the seed topology renders them.
GROUP_UNITS = ("hastack-neutron-cleanup", "neutron-metadata-agent", "neutron-dhcp-agent", "neutron-l3-agent")


def with_group(s: ClusterState) -> ClusterState:
    return replace(s, pacemaker=replace(s.pacemaker, agent_units=GROUP_UNITS))


@pytest.fixture(scope="module")
def healthy() -> ClusterState:
    return with_group(sc.state("healthy"))


def unit(name: str, active: str = "active", exists: bool = True) -> UnitState:
    return UnitState(name, f"{name}.service", "loaded" if exists else "not-found", active,
                     "running" if active == "active" else "dead", "enabled")


# -- recorded in the lab --------------------------------------------------------------------------------


def test_healthy_lab_exits_0_and_says_where_things_run(healthy: ClusterState) -> None:
    v = verdict(healthy)
    assert v.exit_code == 0 and v.healthy and v.summary() == "healthy" and not v.problems
    assert one(v, "VIP-HOLDER").subject == "ctl-1"
    assert one(v, "PCMK-GROUP").subject == "net-2"
    assert one(v, "OS-NOT-DEPLOYED").severity is Level.INFO  # keystone: in the topology, not deployed yet


def test_an_unfinished_rotation_is_named_with_what_finishes_it(healthy: ClusterState, tmp_path) -> None:
    """Read from the secrets file (not a host): healthy still, but said, with the command."""
    from pathlib import Path

    from hastack.components import logins
    from hastack.secrets import Secrets
    from hastack.status.collect import credentials

    assert not [f for f in verdict(healthy).findings if f.code == "ROTATION-UNFINISHED"]
    v = verdict(replace(healthy, rotating=("db/nova", "rabbit/nova")))
    f = one(v, "ROTATION-UNFINISHED")
    assert v.exit_code == 0 and f.severity is Level.INFO and "2 service login(s)" in f.message
    assert "hastack deploy" in f.hint
    topo, _ = sc.topology("healthy")
    topo_file = Path(tmp_path) / "t.yml"
    s = Secrets.load(Path(tmp_path) / ".hastack" / topo.name / "secrets.yml")
    s.path.parent.mkdir(parents=True)  # type: ignore[union-attr]
    logins.begin(s, "db", "nova")
    s.save()
    assert credentials(topo, topo_file).rotating == ("db/nova",)


def test_a_powered_off_controller_is_degraded_and_the_vip_moved() -> None:
    v = verdict(sc.state("ctl1-off"))
    assert v.exit_code == 1
    assert one(v, "HOST-UNREACHABLE").subject == "ctl-1"
    assert problems(v) == {"HOST-UNREACHABLE", "GALERA-DEGRADED", "RABBIT-NODE-DOWN", "RABBIT-QUEUE-REPLICA-OFFLINE",
                           "HAPROXY-SERVER-DOWN"}
    assert "ctl-1" in one(v, "GALERA-DEGRADED").message and "2 of 3" in one(v, "GALERA-DEGRADED").message
    assert one(v, "VIP-HOLDER").subject == "ctl-2"
    assert one(v, "HAPROXY-SERVER-DOWN").subject == "ctl-1"
    assert one(v, "GALERA-WRITER").message.endswith("ctl-2")


def test_seconds_after_a_power_off_rabbitmq_still_waits_and_that_is_degraded_not_unknown() -> None:
    v = verdict(sc.state("ctl1-off-early"))
    assert v.exit_code == 1
    assert one(v, "RABBIT-VIEW-SLOW").severity is Level.DEGRADED
    assert one(v, "RABBIT-QUEUES-UNREAD").severity is Level.DEGRADED
    assert one(v, "RABBIT-NODE-DOWN").subject == "ctl-1"


def test_a_cut_galera_node_is_named() -> None:
    v = verdict(sc.state("ctl3-cut"))
    assert v.exit_code == 1
    assert one(v, "HOST-UNREACHABLE").subject == "ctl-3"
    assert "ctl-3" in one(v, "GALERA-DEGRADED").message
    assert one(v, "HAPROXY-SERVER-DOWN").subject == "ctl-3"


def test_controllers_cut_from_each_other_is_down_with_the_recover_command() -> None:
    v = verdict(sc.state("controllers-split"))
    assert v.exit_code == 2
    f = one(v, "GALERA-NO-PRIMARY")
    assert f.severity is Level.DOWN and f.hint == "run `hastack recover galera tests/lab/status.yml`"
    assert all(n in f.message for n in ("ctl-1", "ctl-2", "ctl-3")) and "seqno 16" in f.message
    assert one(v, "VIP-MANY").severity is Level.DOWN
    assert {"GALERA-NO-WRITER", "GALERA-SQL-VIP"} <= problems(v)
    assert v.summary().startswith("down: galera:")


def test_every_broker_paused_is_rabbitmq_down() -> None:
    v = verdict(sc.state("controllers-split-paused"))
    f = one(v, "RABBIT-DOWN")
    assert f.severity is Level.DOWN and "recover rabbitmq" in f.hint


def test_stopped_services_each_named_with_the_command_to_run() -> None:
    v = verdict(sc.state("services-stopped"))
    assert v.exit_code == 1
    stopped = one(v, "GALERA-NODE-STOPPED")
    assert stopped.subject == "ctl-2" and "seqno 17" in stopped.message and "systemctl start mariadb" in stopped.hint
    assert one(v, "RABBIT-NODE-DOWN").subject == "ctl-3"
    assert one(v, "HAPROXY-DOWN").subject == "ctl-3" and one(v, "HAPROXY-DOWN").severity is Level.DEGRADED
    assert one(v, "KEEPALIVED-DOWN").subject == "ctl-3"
    assert one(v, "MEMCACHED-DOWN").subject == "ctl-1"
    standby = one(v, "PCMK-NODE-STANDBY")
    assert standby.subject == "net-2" and "crm node online net-2" in standby.hint
    assert one(v, "PCMK-FENCE-STOPPED").subject == "net-1"
    assert one(v, "PCMK-FAILED-ACTION").severity is Level.INFO
    assert one(v, "PCMK-FAILCOUNT").severity is Level.INFO


def test_a_fenced_network_node_and_the_agents_moved() -> None:
    v = verdict(sc.state("net1-cut"))
    assert v.exit_code == 1
    assert one(v, "PCMK-NODE-OFFLINE").subject == "net-1"
    assert one(v, "PCMK-FENCED").severity is Level.INFO
    assert one(v, "PCMK-GROUP").subject == "net-2"


# -- hosts and exit codes -----------------------------------------------------------------------------------


def unread(s: ClusterState, *names: str, error: str = "did not answer within 5s") -> ClusterState:
    """The state as if these hosts had not answered (their facts gone too)."""
    topo, path, reads, client = sc.reads("healthy")
    from hastack.status.collect import HostRead, assemble

    for n in names:
        reads[n] = HostRead(HostView(n, reads[n].view.roles, reads[n].view.address, False, error), None)
    return assemble(topo, path, reads, client)


def test_no_host_read_at_all_is_unknown(healthy: ClusterState) -> None:
    s = unread(healthy, *(h.name for h in healthy.hosts))
    s = replace(s, galera=replace(s.galera, sql=None))
    v = verdict(s)
    assert v.exit_code == 3 and "HOST-NONE-READ" in v.codes()


def test_all_controllers_unread_but_the_vip_fails_sql_is_down(healthy: ClusterState) -> None:
    s = unread(healthy, "ctl-1", "ctl-2", "ctl-3")
    s = replace(s, galera=replace(s.galera, sql=SqlCheck(False, error="Can't connect")))
    v = verdict(s)
    assert v.exit_code == 2 and one(v, "GALERA-UNREAD").severity is Level.DOWN
    assert one(v, "RABBIT-UNREAD").severity is Level.UNKNOWN
    assert one(v, "VIP-UNREAD").severity is Level.UNKNOWN  # HAProxy still answered HTTP on the VIP
    silent = replace(s, vip=replace(s.vip, answers=False))
    assert one(verdict(silent), "VIP-UNREAD").severity is Level.DOWN


def test_all_controllers_unread_with_sql_answering_is_unknown(healthy: ClusterState) -> None:
    v = verdict(unread(healthy, "ctl-1", "ctl-2", "ctl-3"))
    assert v.exit_code == 3 and one(v, "GALERA-UNREAD").severity is Level.UNKNOWN


def test_precedence_down_over_unknown_over_degraded() -> None:
    def v(*levels: Level) -> int:
        return Verdict(tuple(finding(f"X{i}", lv, "t", "m") for i, lv in enumerate(levels))).exit_code

    assert v() == 0 and v(Level.INFO) == 0 and v(Level.DEGRADED, Level.INFO) == 1
    assert v(Level.DEGRADED, Level.UNKNOWN) == 3 and v(Level.UNKNOWN, Level.DOWN, Level.DEGRADED) == 2


def test_a_probe_that_failed_and_output_that_cannot_be_read(healthy: ClusterState) -> None:
    hosts = list(healthy.hosts)
    hosts[3] = replace(hosts[3], error="the status probe did not answer in time")
    hosts[4] = replace(hosts[4], problems=(Problem("crm_mon", "cannot read the answer"),
                                          Problem("units", "no answer within 4s", True)))
    v = verdict(replace(healthy, hosts=tuple(hosts)))
    assert one(v, "HOST-PROBE-FAILED").subject == "net-1"
    assert one(v, "STATUS-UNREADABLE").severity is Level.UNKNOWN
    assert one(v, "HOST-SLOW-ANSWER").severity is Level.DEGRADED
    assert v.exit_code == 3


def test_summary_names_the_worst_first() -> None:
    v = verdict(sc.state("services-stopped"))
    assert v.summary(limit=2).startswith("degraded: galera: ") and "more)" in v.summary(limit=2)


# -- Galera ---------------------------------------------------------------------------------------------------


def with_galera(s: ClusterState, nodes: list[GaleraNode], **kw: object) -> ClusterState:
    return replace(s, galera=replace(s.galera, nodes=tuple(nodes), **kw))  # type: ignore[arg-type]


def stopped(name: str, case: str) -> GaleraNode:
    gs = answer(grastate(), "grastate", case)
    down = answer(galera_status(), "mariadb", "wsrep_status-server-down")
    return GaleraNode(name, True, down, gs, unit("mariadb", "inactive"))


def test_galera_stopped_everywhere_names_the_most_advanced_node(healthy: ClusterState) -> None:
    s = with_galera(healthy, [stopped("ctl-1", "last-out"), stopped("ctl-2", "clean-stop"),
                              stopped("ctl-3", "crashed")])
    f = one(verdict(s), "GALERA-NO-PRIMARY")
    assert f.severity is Level.DOWN and "stopped on every controller" in f.message
    assert "ctl-1 has the highest seqno 10" in f.message and "seqno -1 on ctl-3" in f.message
    assert f.hint.startswith("run `hastack recover galera ")


def test_galera_non_primary_beside_a_primary_is_an_isolated_node(healthy: ClusterState) -> None:
    nodes = list(healthy.galera.nodes)
    nodes[2] = replace(nodes[2], status=answer(galera_status(), "mariadb", "wsrep_status-non-primary"))
    v = verdict(with_galera(healthy, nodes))
    assert one(v, "GALERA-NODE-ISOLATED").subject == "ctl-3" and v.exit_code == 1


def status_with(base: GaleraStatus, **values: str) -> GaleraStatus:
    return GaleraStatus(True, {**base.values, **{f"wsrep_{k}": v for k, v in values.items()}})


def test_two_primary_components_are_split_brain(healthy: ClusterState) -> None:
    nodes = list(healthy.galera.nodes)
    assert nodes[2].status is not None
    nodes[2] = replace(nodes[2], status=status_with(nodes[2].status, cluster_state_uuid="other", cluster_size="1"))
    assert one(verdict(with_galera(healthy, nodes)), "GALERA-SPLIT").severity is Level.DOWN


def test_galera_joining_flow_control_and_extra_members(healthy: ClusterState) -> None:
    nodes = list(healthy.galera.nodes)
    assert all(n.status for n in nodes)
    nodes[0] = replace(nodes[0], status=status_with(nodes[0].status, flow_control_paused="0.35",  # type: ignore[arg-type]
                                                    cluster_size="4"))
    nodes[1] = replace(nodes[1], status=status_with(nodes[1].status, local_state_comment="Joined"))  # type: ignore[arg-type]
    v = verdict(with_galera(healthy, nodes))
    assert one(v, "GALERA-FLOW-CONTROL").subject == "ctl-1"
    assert one(v, "GALERA-NOT-SYNCED").subject == "ctl-2"
    assert "GALERA-EXTRA-MEMBERS" in v.codes()


def test_no_writer_and_disagreeing_writers(healthy: ClusterState) -> None:
    v = verdict(replace(healthy, galera=replace(healthy.galera, writers={"ctl-1": None, "ctl-2": None})))
    assert one(v, "GALERA-NO-WRITER").severity is Level.DOWN
    v = verdict(replace(healthy, galera=replace(healthy.galera, writers={"ctl-1": "ctl-1", "ctl-2": "ctl-2"})))
    assert one(v, "GALERA-WRITERS-DIFFER").severity is Level.DEGRADED


def test_garbd_down(healthy: ClusterState) -> None:
    s = replace(healthy, galera=replace(healthy.galera, garbd=(UnitCheck("net-1", "garbd", unit("garbd", "failed")),)))
    assert one(verdict(s), "GARBD-DOWN").subject == "net-1"


# -- RabbitMQ -------------------------------------------------------------------------------------------------


def with_rabbit(s: ClusterState, nodes: list[RabbitNode] | None = None, **kw: object) -> ClusterState:
    r = replace(s.rabbit, nodes=tuple(nodes) if nodes is not None else s.rabbit.nodes, **kw)  # type: ignore[arg-type]
    return replace(s, rabbit=r)


def serving(n: RabbitNode, **kw: object) -> RabbitNode:
    assert n.facts is not None
    return replace(n, facts=replace(n.facts, **kw))  # type: ignore[arg-type]


def test_one_broker_of_three_is_no_quorum(healthy: ClusterState) -> None:
    nodes = [serving(n, local=n.name == "ctl-1", view=None) for n in healthy.rabbit.nodes]
    v = verdict(with_rabbit(healthy, nodes))
    assert one(v, "RABBIT-NO-QUORUM").severity is Level.DOWN
    assert {f.subject for f in found(v, "RABBIT-NODE-DOWN")} == {"ctl-2", "ctl-3"}


def test_partition_and_alarms(healthy: ClusterState) -> None:
    n0 = healthy.rabbit.nodes[0]
    assert n0.view is not None
    view = replace(n0.view, partitions={"rabbit@ctl-1": ("rabbit@ctl-3",)})
    nodes = [serving(n0, view=view, alarms=(Alarm("rabbit@ctl-2", "disk"),)), *healthy.rabbit.nodes[1:]]
    v = verdict(with_rabbit(healthy, nodes))
    assert one(v, "RABBIT-PARTITION").severity is Level.DOWN
    assert one(v, "RABBIT-ALARM").subject == "ctl-2"


def test_a_broker_outside_the_cluster(healthy: ClusterState) -> None:
    nodes = list(healthy.rabbit.nodes)
    for i, n in enumerate(nodes):
        assert n.view is not None
        nodes[i] = serving(n, view=replace(n.view, disk_nodes=("rabbit@ctl-1", "rabbit@ctl-2")))
    assert one(verdict(with_rabbit(healthy, nodes)), "RABBIT-NOT-CLUSTERED").subject == "ctl-3"


def test_quorum_queue_rules(healthy: ClusterState) -> None:
    members = ("rabbit@ctl-1", "rabbit@ctl-2", "rabbit@ctl-3")
    queues = (Queue("scheduler", "quorum", "", members, members[:2], vhost="nova"),
              Queue("conductor", "quorum", "rabbit@ctl-1", members, members[:1], vhost="nova"),
              Queue("compute", "quorum", "rabbit@ctl-1", members, members[:2], vhost="nova"),
              Queue("engine", "quorum", "rabbit@ctl-1", members[:2], members[:2], vhost="heat"),
              Queue("reply_x", "classic", vhost="nova"))
    v = verdict(with_rabbit(healthy, queues=queues))
    assert "nova/scheduler" in one(v, "RABBIT-QUEUE-NO-LEADER").message
    assert "nova/conductor" in one(v, "RABBIT-QUEUE-BELOW-QUORUM").message
    assert "rabbit@ctl-3" in one(v, "RABBIT-QUEUE-REPLICA-OFFLINE").message
    assert "heat/engine" in one(v, "RABBIT-QUEUE-UNDER-REPLICATED").message
    assert v.exit_code == 2


def test_queues_unchecked_without_the_account_is_info(healthy: ClusterState) -> None:
    v = verdict(with_rabbit(healthy, queues=None, queues_error="no management API account (secret rabbit/admin)"))
    assert one(v, "RABBIT-QUEUES-UNREAD").severity is Level.INFO and v.exit_code == 0
    v = verdict(with_rabbit(healthy, queues=None, queues_error="cannot read"))
    assert one(v, "RABBIT-QUEUES-UNREAD").severity is Level.UNKNOWN


def test_rabbitmqctl_fallback_state_is_judged_the_same(healthy: ClusterState) -> None:
    rec = load("rabbitmqctl", "cluster_status-node-down")
    from hastack.facts import cluster_status

    view = cluster_status().parse(rec.result())
    nodes = [replace(n, facts=RabbitFacts(True, view=view, queues_error="no management API account"))
             for n in healthy.rabbit.nodes]
    v = verdict(with_rabbit(healthy, nodes, queues=None, queues_error="no management API account"))
    assert one(v, "RABBIT-NODE-DOWN").subject == "ctl-3"


# -- VIP, HAProxy ---------------------------------------------------------------------------------------------


def test_vip_nowhere_is_down_and_elsewhere_is_degraded(healthy: ClusterState) -> None:
    v = verdict(replace(healthy, vip=replace(healthy.vip, holders=())))
    assert one(v, "VIP-NONE").severity is Level.DOWN
    v = verdict(replace(healthy, vip=replace(healthy.vip, holders=(), unread=("ctl-1",), answers=True)))
    assert one(v, "VIP-ELSEWHERE").severity is Level.DEGRADED


def test_haproxy_down_on_the_vip_holder_is_down(healthy: ClusterState) -> None:
    from hastack.facts import HAProxyStats

    nodes = list(healthy.haproxy.nodes)
    nodes[0] = replace(nodes[0], stats=HAProxyStats(False, error="cannot connect"))
    v = verdict(replace(healthy, haproxy=replace(healthy.haproxy, nodes=tuple(nodes))))
    assert one(v, "HAPROXY-DOWN").severity is Level.DOWN and one(v, "HAPROXY-DOWN").subject == "ctl-1"
    everywhere = [replace(n, stats=HAProxyStats(False, error="x")) for n in nodes]
    v = verdict(replace(healthy, haproxy=replace(healthy.haproxy, nodes=tuple(everywhere))))
    assert "HAPROXY-NONE" in v.codes()


# -- Pacemaker, from crm_mon recordings --------------------------------------------------------------------------


def with_crm(s: ClusterState, case: str, *, agents_on: tuple[str, ...] = ("net-1",),
             counts: tuple[FailCount, ...] = ()) -> ClusterState:
    crm = answer(crm_mon(), "crm_mon", case)
    nodes = []
    for n in s.pacemaker.nodes:
        agents = tuple(UnitCheck(n.name, u, unit(u, "active" if n.name in agents_on else "inactive"))
                       for u in s.pacemaker.agent_units)
        nodes.append(replace(n, crm=crm, agents=agents, fail_counts=counts))
    return replace(s, pacemaker=replace(s.pacemaker, nodes=tuple(nodes)))


def test_no_quorum_stops_the_group(healthy: ClusterState) -> None:
    v = verdict(with_crm(healthy, "no-quorum", agents_on=()))
    assert {"PCMK-NO-QUORUM", "PCMK-GROUP-STOPPED", "PCMK-NODE-OFFLINE"} <= problems(v) and v.exit_code == 2


def test_pacemaker_not_running_anywhere(healthy: ClusterState) -> None:
    v = verdict(with_crm(healthy, "not-running", agents_on=()))
    assert one(v, "PCMK-DOWN").severity is Level.DOWN


def test_unclean_standby_and_fence_history(healthy: ClusterState) -> None:
    assert one(verdict(with_crm(healthy, "node-unclean")), "PCMK-NODE-UNCLEAN").subject == "net-1"
    assert one(verdict(with_crm(healthy, "standby")), "PCMK-NODE-STANDBY").severity is Level.DEGRADED
    v = verdict(with_crm(healthy, "node-fenced-history", agents_on=("net-2",)))
    assert one(v, "PCMK-FENCED").subject == "net-1" and not found(v, "PCMK-FENCE-FAILED")  # the newest event wins


def test_failed_action_and_a_fail_count_at_the_threshold(healthy: ClusterState) -> None:
    banned = FailCount("net-1", "neutron-l3-agent", 3, 3)
    v = verdict(with_crm(healthy, "failed-action", counts=(banned,)))
    assert one(v, "PCMK-FAILED-ACTION").severity is Level.INFO
    assert one(v, "PCMK-FAILCOUNT-BANNED").severity is Level.DEGRADED


def test_agents_running_on_both_network_nodes_is_split_brain(healthy: ClusterState) -> None:
    v = verdict(with_crm(healthy, "lab-healthy", agents_on=("net-1", "net-2")))
    assert one(v, "PCMK-AGENTS-SPLIT").severity is Level.DOWN


def test_group_split_and_partial(healthy: ClusterState) -> None:
    s = with_crm(healthy, "lab-healthy")
    ref = s.pacemaker.nodes[0]
    assert ref.crm is not None
    res = list(ref.crm.resources)
    i = next(k for k, r in enumerate(res) if r.id == "neutron-l3-agent")
    res[i] = replace(res[i], nodes=("net-2",))
    split = replace(s, pacemaker=replace(s.pacemaker, nodes=tuple(
        replace(n, crm=replace(ref.crm, resources=tuple(res))) for n in s.pacemaker.nodes)))
    assert one(verdict(split), "PCMK-GROUP-SPLIT").severity is Level.DOWN
    res[i] = replace(res[i], nodes=(), active=False)
    partial = replace(s, pacemaker=replace(s.pacemaker, nodes=tuple(
        replace(n, crm=replace(ref.crm, resources=tuple(res))) for n in s.pacemaker.nodes)))
    assert "neutron-l3-agent" in one(verdict(partial), "PCMK-GROUP-PARTIAL").message


def test_the_agents_as_colocated_primitives_read_as_the_group_did(healthy: ClusterState) -> None:
    """What deploy makes now: no group in crm_mon, the agents found by id (the topology's units)."""
    s = with_crm(healthy, "lab-healthy")
    ref = s.pacemaker.nodes[0]
    assert ref.crm is not None
    units = ("hastack-neutron-cleanup", "neutron-metadata-agent", "neutron-dhcp-agent", "neutron-l3-agent")
    res = [replace(r, group="") for r in ref.crm.resources]

    def with_resources(rs: list[CrmResource], agent_units: tuple[str, ...] = units) -> ClusterState:
        return replace(s, pacemaker=replace(s.pacemaker, agent_units=agent_units, nodes=tuple(
            replace(n, crm=replace(ref.crm, resources=tuple(rs))) for n in s.pacemaker.nodes)))

    v = verdict(with_resources(res))
    assert one(v, "PCMK-GROUP").severity is Level.INFO and not found(v, "PCMK-GROUP-MISSING")
    i = next(k for k, r in enumerate(res) if r.id == "neutron-dhcp-agent")
    res[i] = replace(res[i], nodes=("net-1", "net-2"))
    v = verdict(with_resources(res))
    assert one(v, "PCMK-GROUP-SPLIT").severity is Level.DOWN and not found(v, "PCMK-MULTI-ACTIVE")
    assert one(verdict(with_resources([r for r in res if r.id not in units])), "PCMK-GROUP-MISSING")
    assert not found(verdict(with_resources(res, agent_units=())), "PCMK-GROUP-SPLIT")  # no neutron, no group


def test_fencing_off_blocked_resource_and_quorum_helpers(healthy: ClusterState) -> None:
    s = with_crm(healthy, "lab-healthy")
    crm: CrmMon | None = s.pacemaker.nodes[0].crm
    assert crm is not None
    res = tuple(replace(r, blocked=r.id == "neutron-dhcp-agent") for r in crm.resources)
    crm = replace(crm, stonith_enabled=False, resources=res)
    qdevice = unit("corosync-qdevice", "failed")
    nodes = tuple(replace(n, crm=crm, units=(UnitCheck(n.name, "corosync-qdevice", qdevice),))
                  for n in s.pacemaker.nodes)
    qnetd = UnitCheck("ctl-3", "corosync-qnetd", unit("corosync-qnetd", "inactive"))
    v = verdict(replace(s, pacemaker=replace(s.pacemaker, nodes=nodes, qnetd=qnetd)))
    assert one(v, "PCMK-FENCING-OFF").severity is Level.DEGRADED
    assert one(v, "PCMK-BLOCKED").severity is Level.DOWN
    assert {f.subject for f in found(v, "PCMK-UNIT-DOWN")} == {"net-1", "net-2"}
    assert one(v, "QNETD-DOWN").subject == "ctl-3"
    off = replace(s, pacemaker=replace(s.pacemaker, fencing_expected=False, fencing_reason="lab without power switch"))
    assert one(verdict(off), "PCMK-FENCING-SWITCHED-OFF").severity is Level.INFO


def test_no_network_node_read_is_unknown(healthy: ClusterState) -> None:
    nodes = tuple(PacemakerNode(n.name, False) for n in healthy.pacemaker.nodes)
    v = verdict(replace(healthy, pacemaker=replace(healthy.pacemaker, nodes=nodes)))
    assert one(v, "PCMK-UNREAD").severity is Level.UNKNOWN


# -- OpenStack -------------------------------------------------------------------------------------------------


def keystone_api(status: int | None) -> ApiCheck:
    return ApiCheck("keystone", "keystone", "Keystone identity API", "http://10.79.0.10:5000/healthcheck", 200,
                    status, "" if status else "Connection refused")


def with_os(s: ClusterState, **kw: object) -> ClusterState:
    return replace(s, openstack=replace(s.openstack, **kw))  # type: ignore[arg-type]


def test_a_deployed_api_the_vip_does_not_answer_is_down(healthy: ClusterState) -> None:
    s = with_os(healthy, apis=(keystone_api(503),), running_units={"keystone": ("ctl-1/keystone",)})
    v = verdict(s)
    assert one(v, "OS-API-DOWN").severity is Level.DOWN and "OS-NOT-DEPLOYED" not in v.codes()


def test_service_lists(healthy: ClusterState) -> None:
    rows = (ServiceRow("compute", "nova-scheduler", "ctl-1", True),
            ServiceRow("compute", "nova-scheduler", "ctl-2", False),
            ServiceRow("compute", "nova-conductor", "ctl-1", False),
            ServiceRow("compute", "nova-conductor", "ctl-2", False),
            ServiceRow("network", "neutron-l3-agent", "network-agents", True),
            ServiceRow("compute", "nova-compute", "cmp-1", False, enabled=False))
    s = with_os(healthy, apis=(keystone_api(200),), catalog=Catalog(True, rows=rows, errors=("volumev3: HTTP 500",)))
    v = verdict(s)
    assert one(v, "OS-SERVICE-DOWN").subject == "ctl-2"
    assert "nova-conductor" in one(v, "OS-SERVICE-ALL-DOWN").message
    assert one(v, "OS-LIST-FAILED").severity is Level.UNKNOWN
    assert not any("nova-compute" in f.message for f in v.findings)  # disabled on purpose


def test_keystone_answers_but_refuses_admin(healthy: ClusterState) -> None:
    s = with_os(healthy, apis=(keystone_api(200),), catalog=Catalog(False, "Keystone refused a token: HTTP 401"))
    assert one(verdict(s), "OS-AUTH-FAILED").severity is Level.DEGRADED
    s = with_os(healthy, apis=(keystone_api(200),), catalog=None, catalog_note="no Keystone admin password")
    assert one(verdict(s), "OS-LISTS-UNCHECKED").severity is Level.INFO


def test_keystone_deployed_serves_and_its_catalog_was_read() -> None:
    s = with_group(sc.state("keystone-deployed"))
    v = verdict(s)
    assert v.exit_code == 0 and "OS-NOT-DEPLOYED" not in v.codes()
    assert s.openstack.deployed("keystone") and s.openstack.catalog is not None and s.openstack.catalog.checked
    members = s.pacemaker.agent_units
    assert members[0] == "hastack-neutron-cleanup" and "neutron-l3-agent" in members
    assert one(v, "PCMK-GROUP").severity is Level.INFO


def test_the_seed_lab_with_every_openstack_service() -> None:
    s = sc.state("seed-openstack")
    v = verdict(s)
    assert v.exit_code == 0, v.summary()
    assert all(s.openstack.deployed(x) for x in s.openstack.services)
    assert s.openstack.catalog is not None and len(s.openstack.catalog.rows) == 18
    assert len(s.rabbit.quorum_queues) == 64 and {q.vhost for q in s.rabbit.queues or ()} >= {"nova", "neutron"}
    assert s.haproxy.watched[0] == "galera" and len(s.haproxy.watched) == 10


def test_a_restarted_heat_engine_leaves_a_stale_record_that_is_not_a_fault() -> None:
    from hastack.status.model import ServiceRow
    from hastack.status.rules_openstack import _services

    rows = tuple(ServiceRow("orchestration", "heat-engine", host, up)
                 for host, up in (("ctl-1", False), ("ctl-1", True), ("ctl-2", True), ("ctl-3", True)))
    assert list(_services(rows)) == []
    gone = rows[:1] + rows[2:]
    assert [f.code for f in _services(gone)] == ["OS-SERVICE-DOWN"]
