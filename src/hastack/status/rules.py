"""The rules, one function per layer: ClusterState -> findings (see verdict.py for the levels),
and `evaluate`, which runs them all into a Verdict.

A host that could not be read is reported once, by `hosts`; the layers then name it among
what is missing but do not invent its state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from hastack.status import rules_openstack, rules_pacemaker, rules_rabbit
from hastack.status.model import ClusterState, GaleraNode, HAProxyNode, PacemakerView, UnitCheck
from hastack.status.rules_base import DEGRADED, DOWN, INFO, UNKNOWN, recover, unit_word
from hastack.status.verdict import Finding, Verdict, finding

FLOW_CONTROL_LIMIT = 0.1
"""Replication paused more than a tenth of the time: a node cannot keep up with the writes."""

# -- hosts ----------------------------------------------------------------------------------------


def hosts(s: ClusterState) -> Iterator[Finding]:
    if not any(h.read for h in s.hosts):
        first = next((h for h in s.hosts if h.error), None)
        why = f" (e.g. {first.name}: {first.error})" if first else ""
        yield finding("HOST-NONE-READ", UNKNOWN, "hosts", f"no host of the topology could be read{why}",
                      "check the SSH key, known_hosts and the network path to the nodes")
        return
    for h in s.hosts:
        if not h.reachable:
            yield finding("HOST-UNREACHABLE", DEGRADED, "hosts", f"{h.name} does not answer over SSH: {h.error}",
                          f"check {h.name}'s power and network", h.name)
        elif h.error:
            yield finding("HOST-PROBE-FAILED", DEGRADED, "hosts", f"{h.name} answered SSH but not the probe: {h.error}",
                          f"check {h.name}'s load and its python3", h.name)
        for p in h.problems:
            if p.timed_out:
                yield finding("HOST-SLOW-ANSWER", DEGRADED, "hosts", f"{h.name}: {p} (the daemon hangs?)", node=h.name)
            else:
                yield finding("STATUS-UNREADABLE", UNKNOWN, "hosts", f"{h.name}: {p}",
                              "report it: this output is new to hastack", h.name)


# -- Galera -----------------------------------------------------------------------------------------


def _galera_word(n: GaleraNode) -> str:
    if not n.read:
        return f"{n.name} (not read: see the hosts findings)"
    if n.answering and n.status is not None:
        return f"{n.name} {n.status.cluster_status} {n.status.state} (seqno {n.status.last_committed})"
    g = n.grastate
    state = f"grastate seqno {g.seqno}, safe_to_bootstrap {int(g.safe_to_bootstrap)}" if g else "no grastate.dat"
    return f"{n.name} stopped ({state})"


def galera(s: ClusterState) -> Iterator[Finding]:
    g = s.galera
    if not any(n.read for n in g.nodes):
        if g.sql is not None and not g.sql.answered:
            yield finding("GALERA-UNREAD", DOWN, "galera", f"no controller could be read and SQL through the VIP "
                          f"fails: {g.sql.error}")
        else:
            yield finding("GALERA-UNREAD", UNKNOWN, "galera", "no controller's Galera state could be read")
        return
    if not g.primary_nodes:
        yield _no_primary(s)
    else:
        yield from _primary(s)
    yield from _flow_control(s)
    for u in g.garbd:
        if u.state is not None and not u.state.active:
            yield finding("GARBD-DOWN", DEGRADED, "galera", f"garbd is not running on {u.node} ({unit_word(u)}): "
                          "the arbitrator's vote is missing", f"`systemctl start garbd` on {u.node}", u.node)
    yield from _writer(s)


def _no_primary(s: ClusterState) -> Finding:
    nodes = s.galera.nodes
    known = [n for n in nodes if n.position is not None and n.position >= 0]
    best = max(known, key=lambda n: n.position or 0, default=None)
    stopped = all(n.read and not n.answering for n in nodes)
    head = "Galera is stopped on every controller" if stopped else "Galera has no primary component"
    text = f"{head}: {'; '.join(_galera_word(n) for n in nodes)}"
    if best is not None and all(n.position == best.position for n in known) and len(known) > 1:
        text += f"; every node that said is at seqno {best.position}"
    elif best is not None:
        text += f"; {best.name} has the highest seqno {best.position}"
    unknown = [n.name for n in nodes if n.read and n.position == -1]
    if unknown:
        text += f"; seqno -1 on {', '.join(unknown)} (crashed): recovery reads their position with --wsrep-recover"
    return finding("GALERA-NO-PRIMARY", DOWN, "galera", text, recover("galera", s))


def _primary(s: ClusterState) -> Iterator[Finding]:
    g = s.galera
    uuids = {n.status.cluster_uuid for n in g.primary_nodes if n.status}
    if len(uuids) > 1:
        names = ", ".join(n.name for n in g.primary_nodes)
        yield finding("GALERA-SPLIT", DOWN, "galera", f"two primary components at once ({names}): split brain",
                      recover("galera", s))
    size, votes = g.primary_size, g.expected_votes
    outside = [n for n in g.nodes if not n.primary]
    if size < votes:
        missing = "; ".join(_galera_word(n) for n in outside) or "the arbitrator"
        yield finding("GALERA-DEGRADED", DEGRADED, "galera",
                      f"the primary component has {size} of {votes} votes; missing: {missing}")
    elif size > votes:
        yield finding("GALERA-EXTRA-MEMBERS", DEGRADED, "galera",
                      f"the primary component has {size} members, the topology {votes} votes")
    for n in outside:
        yield from _outside(s, n)
    for n in g.primary_nodes:
        if n.status is not None and not n.status.synced:
            st = n.status.state
            why = ("it is giving a state transfer to a joining node" if st.startswith("Donor")
                   else "it is catching up and takes no writes yet")
            yield finding("GALERA-NOT-SYNCED", DEGRADED, "galera",
                          f"{n.name} is {st} (wsrep_ready {n.status.values.get('wsrep_ready', '?')}): {why}",
                          node=n.name)


def _outside(s: ClusterState, n: GaleraNode) -> Iterator[Finding]:
    if not n.read:
        return  # reported by `hosts`, named in GALERA-DEGRADED
    if n.answering:
        yield finding("GALERA-NODE-ISOLATED", DEGRADED, "galera",
                      f"{_galera_word(n)}: cut off from the primary component",
                      f"it rejoins when its link returns; if it stays out, {recover('galera', s)}", n.name)
    else:
        yield finding("GALERA-NODE-STOPPED", DEGRADED, "galera",
                      f"MariaDB does not answer on {n.name} ({unit_word(UnitCheck(n.name, 'mariadb', n.unit))}; "
                      f"{_galera_word(n).split('(', 1)[-1].rstrip(')')})",
                      f"`systemctl start mariadb` on {n.name} (it rejoins with the missed changes), or "
                      f"{recover('galera', s)}", n.name)


def _flow_control(s: ClusterState) -> Iterator[Finding]:
    for n in s.galera.nodes:
        paused = n.paused
        if paused is not None and paused > FLOW_CONTROL_LIMIT:
            yield finding("GALERA-FLOW-CONTROL", DEGRADED, "galera",
                          f"replication on {n.name} was paused {paused:.0%} of the time (flow control): "
                          "a node cannot keep up with the writes", node=n.name)


def _writer(s: ClusterState) -> Iterator[Finding]:
    g = s.galera
    if g.writers:
        chosen = {w for w in g.writers.values() if w}
        if not chosen:
            yield finding("GALERA-NO-WRITER", DOWN, "galera", "no HAProxy has a Galera server UP: the VIP takes no SQL",
                          recover("galera", s))
        elif len(chosen) > 1:
            where = ", ".join(f"{h} -> {w}" for h, w in g.writers.items())
            yield finding("GALERA-WRITERS-DIFFER", DEGRADED, "galera",
                          f"the HAProxies disagree on the Galera writer ({where}): a VIP move changes writer")
        else:
            yield finding("GALERA-WRITER", INFO, "galera", f"HAProxy sends writes to {chosen.pop()}")
    if g.sql is not None and not g.sql.answered:
        yield finding("GALERA-SQL-VIP", DOWN, "galera", f"SQL through the VIP fails: {g.sql.error}")


# -- RabbitMQ ---------------------------------------------------------------------------------------


def rabbitmq(s: ClusterState) -> Iterator[Finding]:
    yield from rules_rabbit.rabbitmq(s)


# -- VIP, HAProxy, memcached ---------------------------------------------------------------------------


def vip(s: ClusterState) -> Iterator[Finding]:
    v = s.vip
    controllers = [h for h in s.hosts if "controller" in h.roles]
    if len(v.holders) > 1:
        yield finding("VIP-MANY", DOWN, "vip", f"the VIP {v.address} is on {' and '.join(v.holders)} at once: "
                      "split brain, clients reach either", "check VRRP between the controllers (keepalived's log); "
                      "restart keepalived on the node that should not hold it")
    elif v.holders:
        yield finding("VIP-HOLDER", INFO, "vip", f"the VIP {v.address} is on {v.holders[0]}", node=v.holders[0])
    elif controllers and len(v.unread) == len(controllers):
        level = DOWN if v.answers is False else UNKNOWN
        yield finding("VIP-UNREAD", level, "vip", f"no controller could be read; the VIP {v.address} "
                      f"{'does not answer' if v.answers is False else 'holder is unknown'}")
    elif v.unread and v.answers:
        yield finding("VIP-ELSEWHERE", DEGRADED, "vip", f"no controller that answered holds the VIP {v.address}, "
                      f"but it answers: it is on {' or '.join(v.unread)}")
    elif controllers:
        yield finding("VIP-NONE", DOWN, "vip", f"no controller holds the VIP {v.address}",
                      "check keepalived (`systemctl status keepalived`) and HAProxy's /healthz on every controller")
    for u in v.keepalived:
        if u.state is not None and not u.state.active:
            yield finding("KEEPALIVED-DOWN", DEGRADED, "vip",
                          f"keepalived is not running on {u.node} ({unit_word(u)})",
                          f"`systemctl start keepalived` on {u.node}", u.node)


def _stats_word(n: HAProxyNode) -> str:
    err = n.stats.error if n.stats is not None else "not read"
    return f"{err} ({unit_word(UnitCheck(n.name, 'haproxy', n.unit))})"


def haproxy(s: ClusterState) -> Iterator[Finding]:
    h = s.haproxy
    read = [n for n in h.nodes if n.read]
    if not read:
        return  # the controllers are reported by `hosts` and VIP-UNREAD
    answering = [n for n in read if n.answering]
    for n in read:
        if not n.answering:
            level = DOWN if n.name in s.vip.holders else DEGRADED
            holder = " and it holds the VIP" if level is DOWN else ""
            yield finding("HAPROXY-DOWN", level, "haproxy", f"HAProxy on {n.name} does not answer{holder}: "
                          f"{_stats_word(n)}", f"`systemctl restart haproxy` on {n.name}", n.name)
    if not answering:
        yield finding("HAPROXY-NONE", DOWN, "haproxy", "HAProxy answers on no controller")
    yield from _servers_down(s, answering)


def _servers_down(s: ClusterState, answering: list[HAProxyNode]) -> Iterator[Finding]:
    down: dict[str, dict[str, set[str]]] = {}
    reasons: dict[str, str] = {}
    for n in answering:
        assert n.stats is not None
        for backend in s.haproxy.watched:
            for row in n.stats.servers(backend):
                if not row.up:
                    down.setdefault(row.svname, {}).setdefault(backend, set()).add(n.name)
                    reasons.setdefault(row.svname, f"{row.status} {row.check_status}".strip())
    for server, backends in down.items():
        seen = sorted({x for names in backends.values() for x in names})
        yield finding("HAPROXY-SERVER-DOWN", DEGRADED, "haproxy",
                      f"{server} is {reasons[server]} in {', '.join(backends)} (seen by {', '.join(seen)})",
                      node=server)


def memcached(s: ClusterState) -> Iterator[Finding]:
    for m in s.memcached:
        if m.stats is not None and not m.stats.answering:
            yield finding("MEMCACHED-DOWN", DEGRADED, "memcached", f"memcached on {m.name} does not answer: "
                          f"{m.stats.error}", f"`systemctl restart memcached` on {m.name}", m.name)


# -- Pacemaker -------------------------------------------------------------------------------------------


def pacemaker(s: ClusterState) -> Iterator[Finding]:
    p = s.pacemaker
    if not p.nodes:
        return
    if not any(n.read for n in p.nodes):
        yield finding("PCMK-UNREAD", UNKNOWN, "pacemaker", "no network node's cluster state could be read")
        return
    yield from _agents_split(p)
    ref = p.reference
    if ref is None or ref.crm is None:
        why = "; ".join(f"{n.name}: {n.crm.error.split(';')[0] if n.crm else 'not read'}" for n in p.nodes)
        yield finding("PCMK-DOWN", DOWN, "pacemaker", f"Pacemaker answers on no network node ({why}): nothing "
                      "manages the agents", recover("pacemaker", s))
        return
    if not ref.crm.with_quorum:
        yield finding("PCMK-NO-QUORUM", DOWN, "pacemaker", f"the network cluster has no quorum (seen by {ref.name}): "
                      "no-quorum-policy=stop stops the agents", recover("pacemaker", s))
    yield from rules_pacemaker.nodes(s, ref)
    yield from rules_pacemaker.fencing(s, ref)
    yield from rules_pacemaker.group(s, ref)
    yield from rules_pacemaker.resources(s, ref)
    yield from rules_pacemaker.quorum_units(s)


def _agents_split(p: PacemakerView) -> Iterator[Finding]:
    active = [n for n in p.nodes if n.agents_active]
    if len(active) > 1:
        where = "; ".join(f"{n.name}: {', '.join(n.agents_active)}" for n in active)
        yield finding("PCMK-AGENTS-SPLIT", DOWN, "pacemaker", f"agents run on more than one network node ({where}): "
                      "split brain", "fence the node that should not run them (`crm node fence NODE`)")


# -- OpenStack -------------------------------------------------------------------------------------------


def openstack(s: ClusterState) -> Iterator[Finding]:
    yield from rules_openstack.apis(s)
    yield from rules_openstack.catalog(s)


Rule = Callable[[ClusterState], Iterable[Finding]]


def secrets(s: ClusterState) -> Iterator[Finding]:
    """A rotation of service logins left unfinished (deploy stopped before its logins stage): the
    services run on their new logins, the previous ones still work and are still in the stores."""
    if s.rotating:
        shown = ", ".join(s.rotating[:6]) + (f" and {len(s.rotating) - 6} more" if len(s.rotating) > 6 else "")
        yield finding("ROTATION-UNFINISHED", INFO, "secrets",
                      f"a rotation of {len(s.rotating)} service login(s) is not finished ({shown}): the previous "
                      "logins still work", "run `hastack deploy`: its logins stage finishes it")


def rules() -> Sequence[Rule]:
    return (hosts, galera, rabbitmq, vip, haproxy, memcached, pacemaker, openstack, secrets)


def evaluate(state: ClusterState) -> Verdict:
    return Verdict(tuple(f for rule in rules() for f in rule(state)))
