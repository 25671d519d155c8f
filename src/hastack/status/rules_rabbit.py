"""RabbitMQ rules: brokers serving, membership, partitions, alarms, quorum queues.

Which brokers run comes from the cluster view when a broker gives one, else from each broker's
own local answer (the view hangs while RabbitMQ still waits for a member it cannot reach)."""

from __future__ import annotations

from collections.abc import Iterator

from hastack.status.model import ClusterState, RabbitNode, UnitCheck
from hastack.status.rules_base import DEGRADED, DOWN, INFO, UNKNOWN, listing, recover, unit_word
from hastack.status.verdict import Finding, finding


def _broker_word(n: RabbitNode) -> str:
    if not n.read or n.facts is None:
        return f"{n.name}: not read"
    unit = unit_word(UnitCheck(n.name, "rabbitmq-server", n.unit))
    return f"{n.name}: {n.facts.local_error or 'not serving'}; {unit}"


def rabbitmq(s: ClusterState) -> Iterator[Finding]:
    r = s.rabbit
    if not r.expected:
        return
    if not any(n.read for n in r.nodes):
        yield finding("RABBIT-UNREAD", UNKNOWN, "rabbitmq", "no broker could be read")
        return
    if not any(n.serving for n in r.nodes):
        yield finding("RABBIT-DOWN", DOWN, "rabbitmq", "RabbitMQ serves on no broker: "
                      + "; ".join(_broker_word(n) for n in r.nodes), recover("rabbitmq", s))
        return
    running = set(r.running)
    if len(running & set(r.expected)) < r.majority:
        yield finding("RABBIT-NO-QUORUM", DOWN, "rabbitmq", f"only {len(running)} of {len(r.expected)} brokers run "
                      f"({listing(sorted(running))}): quorum queues cannot serve", recover("rabbitmq", s))
    yield from _members(s, running)
    if r.slow_views:
        yield finding("RABBIT-VIEW-SLOW", DEGRADED, "rabbitmq", f"the cluster view of {', '.join(r.slow_views)} does "
                      "not answer in time: RabbitMQ still waits for a member it cannot reach (it gives up after "
                      "net_ticktime)")
    yield from _partitions_and_alarms(s)
    yield from _queues(s)


def _members(s: ClusterState, running: set[str]) -> Iterator[Finding]:
    r = s.rabbit
    ref = r.reference
    for n in r.nodes:
        if n.nodename not in running:
            why = f": {_broker_word(n).split(': ', 1)[1]}" if n.read else " (its host does not answer)"
            yield finding("RABBIT-NODE-DOWN", DEGRADED, "rabbitmq", f"{n.nodename} is not serving{why}",
                          f"`systemctl start rabbitmq-server` on {n.name}, or {recover('rabbitmq', s)}", n.name)
        elif ref is not None and ref.view is not None and n.nodename not in ref.view.members:
            yield finding("RABBIT-NOT-CLUSTERED", DEGRADED, "rabbitmq", f"{n.nodename} is not a member of the "
                          f"cluster {ref.name} sees", recover("rabbitmq", s), n.name)


def _partitions_and_alarms(s: ClusterState) -> Iterator[Finding]:
    facts = [n.facts for n in s.rabbit.nodes if n.serving and n.facts is not None]
    views = [f.view for f in facts if f.view is not None]
    parts = sorted({f"{node} cannot reach {', '.join(peers)}" for v in views for node, peers in v.partitions.items()
                    if peers})
    if parts:
        yield finding("RABBIT-PARTITION", DOWN, "rabbitmq", f"network partition: {'; '.join(parts)}",
                      recover("rabbitmq", s))
    alarms = {(a.node, a.resource) for v in views for a in v.alarms} | {(a.node, a.resource) for f in facts
                                                                        for a in f.alarms}
    for node, resource in sorted(alarms):
        host = node.split("@")[-1]
        yield finding("RABBIT-ALARM", DOWN, "rabbitmq", f"{resource} alarm on {node}: publishers are blocked",
                      f"free {resource} on {host}", host)


def _queues(s: ClusterState) -> Iterator[Finding]:
    r = s.rabbit
    if r.queues is None:
        level = INFO if "account" in r.queues_error else (DEGRADED if r.queues_slow else UNKNOWN)
        yield finding("RABBIT-QUEUES-UNREAD", level, "rabbitmq", f"quorum queues not checked: {r.queues_error}")
        return
    qq = r.quorum_queues
    leaderless = [q.label for q in qq if not q.has_leader]
    below = [q.label for q in qq if q.has_leader and q.below_quorum]
    offline = [q for q in qq if q.has_leader and not q.below_quorum and q.offline]
    short = [q.label for q in qq if len(q.members) < len(r.expected)]
    if leaderless:
        yield finding("RABBIT-QUEUE-NO-LEADER", DOWN, "rabbitmq",
                      f"{len(leaderless)} quorum queue(s) have no leader: {listing(leaderless)}",
                      recover("rabbitmq", s))
    if below:
        yield finding("RABBIT-QUEUE-BELOW-QUORUM", DOWN, "rabbitmq",
                      f"{len(below)} quorum queue(s) have fewer than a majority of replicas online: {listing(below)}",
                      recover("rabbitmq", s))
    if offline:
        nodes = sorted({m for q in offline for m in q.offline})
        yield finding("RABBIT-QUEUE-REPLICA-OFFLINE", DEGRADED, "rabbitmq",
                      f"{len(offline)} quorum queue(s) have replicas offline on {', '.join(nodes)} (quorum kept)")
    if short:
        yield finding("RABBIT-QUEUE-UNDER-REPLICATED", DEGRADED, "rabbitmq",
                      f"{len(short)} quorum queue(s) have fewer replicas than brokers: {listing(short)}",
                      "`rabbitmq-queues grow rabbit@<node> all` on a controller")
