"""Rules across values of a topology. Each rule yields coded reports; none stops the others.

Codes are stable (tests and users grep for them); messages say what to change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from hastack.reports import Report, Severity
from hastack.topology.model import Topology
from hastack.topology.yamldoc import PathKey, SourceMap

Rule = Callable[[Topology], Iterator[tuple[str, Severity, str, PathKey, str]]]
E, W = Severity.ERROR, Severity.WARNING
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
    return fn


def validate(topo: Topology, smap: SourceMap) -> list[Report]:
    out: list[Report] = []
    for fn in RULES:
        for code, sev, msg, path, hint in fn(topo):
            out.append(Report(code, sev, msg, smap.at(path), hint, path))
    return out


def _seconds(iso: str) -> float:
    return float(iso[2:-1])


@rule
def unique_nodes(t: Topology) -> Iterator[tuple[str, Severity, str, PathKey, str]]:
    names = Counter(n.name for n in t.nodes)
    addrs = Counter(n.address for n in t.nodes)
    for i, n in enumerate(t.nodes):
        if names[n.name] > 1:
            yield ("NODE-DUP-NAME", E, f"node name '{n.name}' is used {names[n.name]} times",
                   ("nodes", i, "name"), "give every node its own name")
        if addrs[n.address] > 1:
            yield ("NODE-DUP-ADDRESS", E, f"address {n.address} is used by {addrs[n.address]} nodes",
                   ("nodes", i, "address"), "give every node its own address")
        if len(set(n.roles)) != len(n.roles):
            yield ("NODE-DUP-ROLE", W, f"node '{n.name}' lists a role twice", ("nodes", i, "roles"),
                   "list each role once")


@rule
def addresses_in_network(t: Topology) -> Iterator[tuple[str, Severity, str, PathKey, str]]:
    net = t.network.management
    usable = {net.network_address, net.broadcast_address}
    for i, n in enumerate(t.nodes):
        if n.address not in net or n.address in usable:
            yield ("NODE-OUTSIDE-NETWORK", E, f"node '{n.name}' address {n.address} is not a host address "
                   f"of the management network {net}", ("nodes", i, "address"),
                   f"use a host address inside {net}, or widen network.management")
    if t.network.vip not in net or t.network.vip in usable:
        yield ("VIP-OUTSIDE-NETWORK", E, f"VIP {t.network.vip} is not a host address of {net}",
               ("network", "vip"), f"pick a free host address inside {net}")
    for n in t.nodes:
        if n.address == t.network.vip:
            yield ("VIP-IS-NODE", E, f"VIP {t.network.vip} is node '{n.name}''s own address",
                   ("network", "vip"), "the VIP must be an address no node owns")
    pub = t.network.public
    if pub is not None:
        if pub.vip not in pub.cidr or pub.vip in {pub.cidr.network_address, pub.cidr.broadcast_address}:
            yield ("VIP-OUTSIDE-NETWORK", E, f"public VIP {pub.vip} is not a host address of {pub.cidr}",
                   ("network", "public", "vip"), f"pick a free host address inside {pub.cidr}")
        if pub.cidr.overlaps(net):
            yield ("PUBLIC-OVERLAPS", E, f"public network {pub.cidr} overlaps the management network {net}",
                   ("network", "public", "cidr"), "use a separate network for the public VIP")
        if t.tuning.keepalived.router_id == t.tuning.keepalived.public_router_id:
            yield ("VRRP-ROUTER-ID-DUP", E,
                   f"VRRP router id {t.tuning.keepalived.router_id} is used by both VIPs",
                   ("tuning", "keepalived", "public_router_id"), "give each VIP its own virtual_router_id")


@rule
def controllers(t: Topology) -> Iterator[tuple[str, Severity, str, PathKey, str]]:
    n = len(t.controllers)
    if n < 2:
        yield ("CTRL-TOO-FEW", E, f"{n} controller(s): HAProxy + keepalived and every API service need >= 2",
               ("nodes",), "give the 'controller' role to at least two nodes")
    votes = t.galera_votes
    if n and votes < 3:
        yield ("GALERA-VOTES-LOW", E, f"Galera has {votes} vote(s) ({n} MariaDB + {len(t.garbd_nodes)} garbd); "
               "it needs >= 3 to survive the loss of one", ("nodes",),
               "add a controller, or the 'arbitrator' role on a node that is not a controller (runs garbd)")
    elif n and votes % 2 == 0:
        yield ("GALERA-VOTES-EVEN", E, f"Galera has an even number of votes ({votes}): a clean split "
               "loses quorum on both sides", ("nodes",),
               "add or remove one vote (a controller, or garbd via the 'arbitrator' role)")
    yield from messaging(t)


def messaging(t: Topology) -> Iterator[tuple[str, Severity, str, PathKey, str]]:
    brokers, queues = len(t.brokers), t.rabbitmq.queues
    if brokers == 2 and queues == "quorum":
        yield ("RABBIT-TWO-BROKERS", E, "2 RabbitMQ brokers: a quorum queue of 2 members stops when either "
               "broker is down, and with it every OpenStack RPC", ("nodes",),
               "give the 'arbitrator' role to a node that is not a controller (it runs a third broker), "
               "add a controller, or choose rabbitmq.queues: mirrored")
    if brokers and queues == "mirrored":
        yield ("RABBIT-MIRRORED", W, "classic mirrored queues can lose acknowledged messages when the "
               "network partitions (Jepsen, 2014), and RabbitMQ 4 removes them", ("rabbitmq", "queues"),
               "prefer quorum queues with >= 3 brokers (the 'arbitrator' role adds the third)")
    if brokers == 2 and t.tuning.rabbitmq.partition_handling == "pause_minority":
        yield ("RABBIT-PAUSE-TWO", E, "pause_minority with 2 brokers: the survivor of a broker's loss is a "
               "minority and pauses itself", ("tuning", "rabbitmq", "partition_handling"),
               "leave partition_handling unset (autoheal with 2 brokers), or add a third broker")
    if 0 < t.tuning.rabbitmq.dead_peer_after_s < 1:
        yield ("RABBIT-DEAD-PEER-SHORT", E, f"dead_peer_after_s {t.tuning.rabbitmq.dead_peer_after_s:g}: a peer "
               "must miss at least one whole 1-s probe round before it is dropped",
               ("tuning", "rabbitmq", "dead_peer_after_s"), "use 0 (off) or at least 1 (3 by default)")


@rule
def network_cluster(t: Topology) -> Iterator[tuple[str, Severity, str, PathKey, str]]:
    nets = t.network_nodes
    if t.runs("neutron") and len(nets) < 2:
        yield ("PCMK-TOO-FEW", E, f"{len(nets)} network node(s): the active/passive agent group needs >= 2",
               ("nodes",), "give the 'network' role to at least two nodes")
    if len(t.qnetd_nodes) > 1:
        names = ", ".join(n.name for n in t.qnetd_nodes)
        yield ("QNETD-MULTIPLE", E, f"{names} would each run corosync-qnetd; a cluster uses one",
               ("nodes",), "keep the 'arbitrator' role on one node that is not a network node")
    if len(nets) == 2 and not t.qnetd_nodes and t.tuning.corosync.priority_fencing_delay_s == 0:
        yield ("PCMK-QUORUM-UNSAFE", E, "2 network nodes with neither a quorum device nor a fencing delay: "
               "on a partition both sides fence each other", ("nodes",),
               "add the 'arbitrator' role to a non-network node (qnetd), or set "
               "tuning.corosync.priority_fencing_delay_s (two_node mode)")
    ids: dict[int, list[str]] = {}
    for n in nets:
        ids.setdefault(n.corosync_nodeid, []).append(n.name)
    for nid, holders in ids.items():
        if nid == 0 or len(holders) > 1:
            why = "ends in .0.0" if nid == 0 else f"share the low 16 bits ({nid})"
            yield ("COROSYNC-NODEID", E, f"network node address(es) of {', '.join(holders)} {why}: corosync numbers "
                   "its nodes by them (knet allows 1-65535)", ("nodes",),
                   "give each network node an address that differs from the others' in its last two octets")
    if len(nets) >= 4 and len(nets) % 2 == 0 and not t.qnetd_nodes:
        yield ("PCMK-VOTES-EVEN", W, f"{len(nets)} network nodes and no quorum device: an even split "
               "stops both halves", ("nodes",), "add a quorum device (the 'arbitrator' role)")


@rule
def fencing(t: Topology) -> Iterator[tuple[str, Severity, str, PathKey, str]]:
    if not t.fencing.enabled:
        if not (t.fencing.reason or "").strip():
            yield ("FENCE-OFF-NO-REASON", E, "fencing is switched off without a reason", ("fencing", "enabled"),
                   "write fencing.reason (why split brain is acceptable here), or switch fencing on")
        else:
            yield ("FENCE-OFF", W, "fencing is off: a hung network node can leave the agents running twice",
                   ("fencing", "enabled"), "configure a fence device per network node")
        return
    for i, n in enumerate(t.nodes):
        if n.has("network") and n.fencing is None:
            yield ("FENCE-MISSING", E, f"network node '{n.name}' has no fence device", ("nodes", i),
                   "add 'fencing: {agent: fence_..., params: {...}}' to it, or set fencing.enabled: false "
                   "with a reason")


@rule
def services(t: Topology) -> Iterator[tuple[str, Severity, str, PathKey, str]]:
    svc = Counter(t.openstack.services)
    needs = {"glance": ["keystone"], "placement": ["keystone"], "neutron": ["keystone"], "cinder": ["keystone"],
             "heat": ["keystone"], "telemetry": ["keystone"],
             "nova": ["keystone", "glance", "placement", "neutron"]}
    for s, deps in needs.items():
        for d in deps:
            if s in svc and d not in svc:
                yield ("SVC-NEEDS", E, f"service '{s}' needs '{d}'", ("openstack", "services"),
                       f"add '{d}' to openstack.services")
    for s, count in svc.items():
        if count > 1:
            yield ("SVC-DUP", W, f"service '{s}' is listed {count} times", ("openstack", "services"),
                   "list each service once")
    if t.runs("nova") and not t.computes:
        yield ("NOVA-NO-COMPUTE", W, "nova runs but no node has the 'compute' role", ("nodes",),
               "add a compute node to run instances")


@rule
def timing(t: Topology) -> Iterator[tuple[str, Severity, str, PathKey, str]]:
    g = t.tuning.galera
    suspect, inactive, keep, install = (_seconds(g.evs_suspect_timeout), _seconds(g.evs_inactive_timeout),
                                        _seconds(g.evs_keepalive_period), _seconds(g.evs_install_timeout))
    if keep * 3 >= suspect:
        yield ("GALERA-EVS-KEEPALIVE", E, f"evs_keepalive_period {g.evs_keepalive_period} must be below a third "
               f"of evs_suspect_timeout {g.evs_suspect_timeout} (mariadbd refuses to start)",
               ("tuning", "galera", "evs_keepalive_period"), "lower evs_keepalive_period")
    if inactive <= suspect:
        yield ("GALERA-EVS-INACTIVE", E, "evs_inactive_timeout must be longer than evs_suspect_timeout",
               ("tuning", "galera", "evs_inactive_timeout"), "raise evs_inactive_timeout")
    if not keep <= install < inactive:
        yield ("GALERA-EVS-INSTALL", E, f"evs_install_timeout {g.evs_install_timeout} must be at least "
               f"evs_keepalive_period and below evs_inactive_timeout {g.evs_inactive_timeout} (Galera refuses "
               "to open the connection)", ("tuning", "galera", "evs_install_timeout"),
               "raise evs_inactive_timeout, or lower evs_install_timeout")
    k = t.tuning.keepalived
    if round(k.advert_int * 100) != k.advert_int * 100:
        yield ("VRRP-ADVERT-RESOLUTION", E, "VRRPv3 adverts are counted in centiseconds",
               ("tuning", "keepalived", "advert_int"), "use at most two decimals")
    h = t.tuning.haproxy
    if h.check_fastinter_ms > h.check_inter_ms:
        yield ("HAPROXY-FASTINTER", W, "check_fastinter_ms is above check_inter_ms: failures are seen later",
               ("tuning", "haproxy", "check_fastinter_ms"), "make fastinter <= inter")
