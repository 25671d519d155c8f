"""ClusterState + Verdict -> Prometheus text exposition (`hastack status --prometheus`).

Metric names `hastack_*`, labelled by topology and node (or backend, server, api...); a value
status could not read is left out rather than written as 0.
"""

from __future__ import annotations

from collections.abc import Iterator

from hastack.status.model import ClusterState
from hastack.status.verdict import Level, Verdict


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """Text exposition format 0.0.4: each family once (HELP, TYPE, then all its samples together)."""

    def __init__(self, topology: str):
        self.base = {"topology": topology}
        self.families: dict[str, tuple[str, str, list[str]]] = {}

    def add(self, name: str, value: float | bool | None, help_: str, kind: str = "gauge", **labels: str) -> None:
        if value is None:
            return
        full = f"hastack_{name}"
        family = self.families.setdefault(full, (help_, kind, []))
        pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in {**self.base, **labels}.items())
        number = float(value) if not isinstance(value, bool) else float(int(value))
        family[2].append(f"{full}{{{pairs}}} {number:g}")

    def text(self) -> str:
        lines = []
        for full, (help_, kind, samples) in self.families.items():
            lines += [f"# HELP {full} {help_}", f"# TYPE {full} {kind}", *samples]
        return "\n".join(lines) + "\n"


def to_prometheus(state: ClusterState, verdict: Verdict) -> str:
    m = Metrics(state.name)
    m.add("status_code", verdict.exit_code, "hastack status exit code: 0 healthy, 1 degraded, 2 down, 3 unknown")
    m.add("status_seconds", round(state.seconds, 3), "Seconds status took to read every host")
    for level in Level:
        m.add("findings", sum(f.severity is level for f in verdict.findings), "Findings by level", level=level.word)
    for h in state.hosts:
        m.add("host_up", h.read, "1 when the host answered status over SSH", host=h.name)
    for samples in (_galera_metrics(state), _other_metrics(state)):
        for name, value, help_, labels in samples:
            m.add(name, value, help_, **labels)
    return m.text()


Sample = tuple[str, float | bool | None, str, dict[str, str]]


def _galera_metrics(state: ClusterState) -> Iterator[Sample]:
    g = state.galera
    yield "galera_expected_votes", g.expected_votes, "Galera votes the topology expects", {}
    for n in g.nodes:
        s = n.status if n.answering else None
        lbl = {"node": n.name}
        yield "galera_up", n.answering if n.read else None, "1 when MariaDB answers on the node", lbl
        yield "galera_primary", s.primary if s else None, "1 when the node is in a primary component", lbl
        yield "galera_synced", s.synced if s else None, "1 when Primary, Synced and wsrep_ready", lbl
        yield "galera_cluster_size", s.cluster_size if s else None, "wsrep_cluster_size seen by the node", lbl
        yield "galera_flow_control_paused", n.paused, "wsrep_flow_control_paused (fraction of time)", lbl
        yield "galera_last_committed", s.last_committed if s else None, "wsrep_last_committed", lbl
        if n.grastate is not None and not n.answering:
            yield "galera_grastate_seqno", n.grastate.seqno, "seqno in grastate.dat of a stopped node", lbl
            yield ("galera_safe_to_bootstrap", n.grastate.safe_to_bootstrap,
                   "safe_to_bootstrap in grastate.dat of a stopped node", lbl)
    for haproxy_node, writer in g.writers.items():
        yield "galera_writer", 1 if writer else 0, "The Galera server HAProxy sends writes to", \
            {"haproxy": haproxy_node, "server": writer or ""}
    if g.sql is not None:
        yield "galera_sql_via_vip_up", g.sql.answered, "1 when SQL through the VIP answers", {}


def _other_metrics(state: ClusterState) -> Iterator[Sample]:
    r = state.rabbit
    yield "rabbitmq_brokers_expected", len(r.expected), "RabbitMQ brokers the topology expects", {}
    if any(n.read for n in r.nodes):
        yield "rabbitmq_brokers_running", len(r.running), "Brokers running (cluster view, else their own word)", {}
    for n in r.nodes:
        if n.read:
            yield "rabbitmq_up", n.serving, "1 when the broker on the node serves its vhosts", {"node": n.name}
    views = [n.view for n in r.nodes if n.serving and n.view is not None]
    if views:
        yield "rabbitmq_partitions", max(len(v.partitions) for v in views), "Nodes reporting a partition", {}
    facts = [n.facts for n in r.nodes if n.facts is not None]
    alarms = {(a.node, a.resource) for v in views for a in v.alarms} | {(a.node, a.resource) for f in facts
                                                                        for a in f.alarms}
    for node, resource in sorted(alarms):
        yield "rabbitmq_alarm", 1, "A resource alarm (publishers blocked)", {"node": node, "resource": resource}
    if r.queues is not None:
        qq = r.quorum_queues
        yield "rabbitmq_quorum_queues", len(qq), "Quorum queues in every vhost", {}
        yield "rabbitmq_quorum_queues_without_leader", sum(not q.has_leader for q in qq), \
            "Quorum queues without leader", {}
        yield "rabbitmq_quorum_queues_below_quorum", sum(q.below_quorum for q in qq), "Quorum queues below quorum", {}
        yield "rabbitmq_quorum_queues_replica_offline", sum(bool(q.offline) for q in qq), \
            "Quorum queues with an offline replica", {}
    yield "vip_holders", len(state.vip.holders), "Controllers holding the VIP (1 is right)", {}
    for k in state.vip.keepalived:
        if k.node not in state.vip.unread:
            yield "vip_held", k.node in state.vip.holders, "1 on the controller holding the VIP", {"node": k.node}
    yield from _haproxy_metrics(state)
    for mc in state.memcached:
        if mc.stats is not None:
            yield "memcached_up", mc.stats.answering, "1 when memcached answers stats", {"node": mc.name}
    yield from _pacemaker_metrics(state)
    for a in state.openstack.apis:
        yield "openstack_api_up", a.ok, "1 when the API answers its check through the VIP", {"api": a.name}
    for s in state.openstack.services:
        yield "openstack_deployed", state.openstack.deployed(s), "1 when the service is deployed", {"service": s}
    cat = state.openstack.catalog
    for row in cat.rows if cat else ():
        yield "openstack_service_up", row.up, "1 when the service/agent is up in its API's list", \
            {"type": row.kind, "binary": row.binary, "host": row.host}


def _haproxy_metrics(state: ClusterState) -> Iterator[Sample]:
    for n in state.haproxy.nodes:
        if not n.read:
            continue
        yield "haproxy_up", n.answering, "1 when HAProxy answers on its stats socket", {"node": n.name}
        if n.stats is None or not n.stats.available:
            continue
        for b in state.haproxy.watched:
            for s in n.stats.servers(b):
                yield "haproxy_server_up", s.up, "1 when HAProxy's check says UP", \
                    {"node": n.name, "backend": b, "server": s.svname}


def _pacemaker_metrics(state: ClusterState) -> Iterator[Sample]:
    p = state.pacemaker
    ref = p.reference
    if ref is None or ref.crm is None:
        if p.nodes:
            yield "pacemaker_up", 0, "1 when Pacemaker answers on a network node", {}
        return
    crm = ref.crm
    yield "pacemaker_up", 1, "1 when Pacemaker answers on a network node", {}
    yield "pacemaker_quorum", crm.with_quorum, "1 when the network cluster is quorate", {}
    yield "pacemaker_stonith_enabled", crm.stonith_enabled, "stonith-enabled", {}
    for n in crm.nodes:
        yield "pacemaker_node_online", n.state == "online", "1 when the node is online (not standby)", {"node": n.name}
    for node in crm.running_on(p.group):
        yield "pacemaker_group_running", 1, "The node running the agent group", {"node": node, "group": p.group}
    yield "pacemaker_failed_actions", len(crm.failures), "Failed actions recorded", {}
    for c in ref.fail_counts:
        yield "pacemaker_fail_count", c.count, "Fail count of a resource on a node", \
            {"node": c.node, "resource": c.resource}
