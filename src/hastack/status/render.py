"""ClusterState + Verdict -> a rich table per layer, a JSON document, or Prometheus text.

The three carry the same facts: JSON for monitoring that reads documents, Prometheus for
scrapers (`hastack_*` metrics with node/backend labels), the tables for people. Nothing here
decides anything: the verdict is computed before, and rendered as it is.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hastack.status.model import ClusterState, GaleraNode, PacemakerNode, RabbitNode
from hastack.status.probes import FailCount
from hastack.status.verdict import Finding, Level, Verdict

STYLE = {0: "bold green", 1: "bold yellow", 2: "bold red", 3: "bold magenta"}
LEVEL_STYLE = {Level.INFO: "cyan", Level.DEGRADED: "yellow", Level.DOWN: "red", Level.UNKNOWN: "magenta"}
DASH = "-"


def _yes(value: bool | None, yes: str = "yes", no: str = "no") -> Text:
    if value is None:
        return Text(DASH, style="dim")
    return Text(yes, style="green") if value else Text(no, style="red")


def _table(title: str, *columns: str) -> Table:
    t = Table(title=title, title_justify="left", title_style="bold", expand=False, pad_edge=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    return t


# -- the tables ------------------------------------------------------------------------------------


def headline(state: ClusterState, verdict: Verdict) -> Text:
    code = verdict.exit_code
    when = time.strftime("%H:%M:%S", time.localtime(state.collected_at)) if state.collected_at else ""
    read = sum(h.read for h in state.hosts)
    text = Text(f"{state.name} ({state.topology_file}): ")
    text.append(f"{verdict.word.upper()} (exit {code})", style=STYLE[code])
    text.append(f" - {read}/{len(state.hosts)} hosts read in {state.seconds:.2f} s {when}".rstrip())
    return text


def hosts_table(state: ClusterState) -> Table:
    t = _table("Hosts", "host", "roles", "answer", "seconds")
    for h in state.hosts:
        if h.read and h.problems:
            answer = Text("partial: " + "; ".join(map(str, h.problems)), style="yellow")
        elif h.read:
            answer = Text("ok", style="green")
        else:
            answer = Text(("unreachable: " if not h.reachable else "probe failed: ") + h.error, style="red")
        t.add_row(h.name, ",".join(h.roles), answer, f"{h.seconds:.2f}")
    return t


def _seqno(n: GaleraNode) -> str:
    if n.answering and n.status is not None:
        return str(n.status.last_committed)
    return DASH


def _grastate(n: GaleraNode) -> str:
    g = n.grastate
    if g is None:
        return DASH
    return f"seqno {g.seqno}, safe_to_bootstrap {int(g.safe_to_bootstrap)}"


def galera_table(state: ClusterState) -> Table:
    g = state.galera
    t = _table(f"Galera ({g.expected_votes} votes expected)", "node", "cluster", "state", "size", "ready",
               "fc paused", "last committed", "grastate.dat", "HAProxy writer")
    for n in g.nodes:
        s = n.status if n.answering else None
        cluster = Text(s.cluster_status, style="green" if s.primary else "red") if s else \
            Text("not running" if n.read else "not read", style="red" if n.read else "dim")
        state_text = Text(s.state, style="green" if s.state == "Synced" else "yellow") if s else Text(DASH)
        size = f"{s.cluster_size}/{g.expected_votes}" if s else DASH
        paused = f"{n.paused:.2f}" if n.paused is not None else DASH
        t.add_row(n.name, cluster, state_text, size, _yes(s.ready if s else None, "ON", "OFF"), paused, _seqno(n),
                  _grastate(n) if not n.answering else DASH, g.writers.get(n.name, DASH) or "none")
    for u in g.garbd:
        t.add_row(u.node, Text("garbd"), _yes(u.active, "running", "stopped"), "", "", "", "", "", "")
    return t


def _broker(n: RabbitNode) -> Text:
    if not n.read or n.facts is None:
        return Text("not read", style="dim")
    if n.serving:
        return Text("serving", style="green")
    return Text(f"not serving: {n.facts.local_error}", style="red")


def _rabbit_view(n: RabbitNode) -> Text:
    f = n.facts
    if f is None or not n.serving:
        return Text(DASH, style="dim")
    if f.view is None:
        return Text(f"no answer: {f.view_error}", style="yellow")
    return Text(", ".join(x.split("@")[-1] for x in sorted(f.view.running_nodes)))


def _rabbit_alarms(n: RabbitNode) -> str:
    f = n.facts
    alarms = {(a.resource, a.node) for a in (f.alarms if f else ())} | {
        (a.resource, a.node) for a in (f.view.alarms if f and f.view else ())}
    return ", ".join(f"{res}@{node.split('@')[-1]}" for res, node in sorted(alarms)) or DASH


def rabbit_table(state: ClusterState) -> Table:
    r = state.rabbit
    t = _table(f"RabbitMQ ({len(r.expected)} brokers expected)", "node", "broker", "its view: running",
               "partitions", "alarms")
    for n in r.nodes:
        v = n.view
        parts = "; ".join(f"{k}: {', '.join(p)}" for k, p in v.partitions.items()) if v and v.partitions else DASH
        t.add_row(n.name, _broker(n), _rabbit_view(n), parts, _rabbit_alarms(n))
    t.caption = queues_caption(state)
    t.caption_justify = "left"
    return t


def queues_caption(state: ClusterState) -> str:
    r = state.rabbit
    if r.queues is None:
        return f"quorum queues: not read ({r.queues_error or 'no broker serves'})"
    qq = r.quorum_queues
    vhosts = len({q.vhost for q in r.queues})
    return (f"queues in {vhosts} vhost(s) (from {r.queues_from}): {len(r.queues)}, {len(qq)} quorum: "
            f"{sum(not q.has_leader for q in qq)} without leader, {sum(q.below_quorum for q in qq)} below quorum, "
            f"{sum(bool(q.offline) for q in qq)} with replicas offline")


def _backends(state: ClusterState, name: str) -> Text:
    node = next(n for n in state.haproxy.nodes if n.name == name)
    if not node.read:
        return Text("not read", style="dim")
    if node.stats is None or not node.stats.available:
        return Text(f"down: {node.stats.error if node.stats else ''}", style="red")
    out = Text()
    for i, b in enumerate(state.haproxy.watched):
        servers = node.stats.servers(b)
        up = sum(s.up for s in servers)
        out.append(("  " if i else "") + f"{b} {up}/{len(servers)}", style="green" if up == len(servers) else
                   ("yellow" if up else "red"))
    return out


def controllers_table(state: ClusterState) -> Table:
    t = _table(f"VIP {state.vip.address}, HAProxy, memcached", "node", "VIP", "keepalived", "HAProxy backends UP",
               "memcached")
    for k, m in zip(state.vip.keepalived, state.memcached, strict=True):
        vip = Text("holds it", style="bold green") if k.node in state.vip.holders else \
            Text("not read" if k.node in state.vip.unread else DASH, style="dim")
        mem = _yes(m.stats.answering if m.stats else None, "answers", m.stats.error if m.stats else "")
        t.add_row(k.node, vip, _yes(k.active, "running", "stopped"), _backends(state, k.node), mem)
    return t


def _pcmk_state(state: ClusterState, n: PacemakerNode) -> Text:
    ref = state.pacemaker.reference
    if ref is None or ref.crm is None:
        return Text(DASH, style="dim")
    try:
        word = ref.crm.node(n.name).state
    except KeyError:
        return Text("unknown", style="red")
    return Text(word, style="green" if word == "online" else "red")


def _own_view(n: PacemakerNode) -> Text:
    if not n.read or n.crm is None:
        return Text("not read", style="dim")
    if not n.crm.available:
        return Text(n.crm.error or "not running", style="red")
    quorum = "quorum" if n.crm.with_quorum else "NO quorum"
    return Text(f"{quorum}, DC {n.crm.dc or 'none'}", style="green" if n.crm.with_quorum else "red")


def _fail_counts(state: ClusterState) -> tuple[FailCount, ...]:
    """Fail counts are cluster-wide (the CIB's status): every node reports all of them."""
    ref = state.pacemaker.reference
    return ref.fail_counts if ref is not None else ()


def pacemaker_table(state: ClusterState) -> Table:
    p = state.pacemaker
    t = _table(f"Pacemaker ({p.group}: {', '.join(p.agent_units)})", "node", "state", "its view", "agents running",
               "fail counts")
    for n in p.nodes:
        agents = ", ".join(n.agents_active) if n.agents_active else (DASH if n.read else "not read")
        counts = ", ".join(f"{c.resource} {c.count}/{c.threshold}" for c in _fail_counts(state)
                           if c.node == n.name) or DASH
        t.add_row(n.name, _pcmk_state(state, n), _own_view(n), agents, counts)
    t.caption = fencing_caption(state)
    t.caption_justify = "left"
    return t


def fencing_caption(state: ClusterState) -> str:
    p = state.pacemaker
    ref = p.reference
    if not p.fencing_expected:
        return f"fencing: off ({p.fencing_reason})"
    if ref is None or ref.crm is None:
        return "fencing: unknown"
    devices = [r for r in ref.crm.resources if r.agent.startswith("stonith:")]
    started = [f"{r.id}@{','.join(r.nodes)}" for r in devices if r.active]
    last = ref.crm.fencing[0] if ref.crm.fencing else None
    history = f"; last: {last.action} {last.target} {last.status} {last.completed}" if last else "; no fencing yet"
    return (f"fencing: stonith-enabled={str(ref.crm.stonith_enabled).lower()}, {len(started)}/{len(devices)} "
            f"devices started ({', '.join(started) or 'none'}){history}")


def openstack_table(state: ClusterState) -> Table:
    o = state.openstack
    t = _table("OpenStack (through the VIP)", "API", "GET", "answer", "deployed")
    for a in o.apis:
        got = f"{a.status}" if a.status is not None else a.error
        t.add_row(a.name, a.url, Text(got, style="green" if a.ok else "red"),
                  _yes(o.deployed(a.service), "yes", "no"))
    if o.catalog is not None and o.catalog.checked:
        t.caption = "services: " + (", ".join(f"{r.binary}@{r.host} {'up' if r.up else 'DOWN'}"
                                              for r in o.catalog.rows) or "none listed")
    elif o.catalog_note:
        t.caption = f"services: not listed ({o.catalog_note})"
    t.caption_justify = "left"
    return t


def findings_table(verdict: Verdict) -> Table:
    t = _table("Findings", "level", "code", "what, and what to do")
    order = sorted(verdict.findings, key=lambda f: -f.level.rank)
    for f in order:
        what = Text(f.message)
        if f.next_step:
            what.append(f"\n-> {f.next_step}", style="bold")
        t.add_row(Text(f.level.word, style=LEVEL_STYLE[f.level]), f.code, what)
    return t


def tables(state: ClusterState, verdict: Verdict) -> Group:
    parts: list[RenderableType] = [headline(state, verdict), hosts_table(state)]
    if state.galera.nodes:
        parts += [galera_table(state), rabbit_table(state), controllers_table(state)]
    if state.pacemaker.nodes:
        parts.append(pacemaker_table(state))
    if state.openstack.services:
        parts.append(openstack_table(state))
    parts.append(findings_table(verdict))
    return Group(*parts)


# -- JSON -----------------------------------------------------------------------------------------


def _finding(f: Finding) -> dict[str, Any]:
    return {"code": f.code, "level": f.level.word, "layer": f.layer, "node": f.node or None, "message": f.message,
            "next_step": f.next_step or None}


def _galera_json(state: ClusterState) -> dict[str, Any]:
    g = state.galera
    nodes = []
    for n in g.nodes:
        s = n.status if n.answering else None
        gs = n.grastate
        nodes.append({"node": n.name, "read": n.read, "running": n.answering,
                      "cluster_status": s.cluster_status if s else None,
                      "state": s.state if s else None, "cluster_size": s.cluster_size if s else None,
                      "ready": s.ready if s else None, "flow_control_paused": n.paused,
                      "last_committed": s.last_committed if s else None, "cluster_uuid": s.cluster_uuid if s else None,
                      "grastate": {"uuid": gs.uuid, "seqno": gs.seqno, "safe_to_bootstrap": gs.safe_to_bootstrap}
                      if gs else None})
    sql = {"answered": g.sql.answered, "node": g.sql.node or None, "error": g.sql.error or None} if g.sql else None
    return {"expected_votes": g.expected_votes, "primary_size": g.primary_size, "nodes": nodes,
            "garbd": [{"node": u.node, "running": u.active} for u in g.garbd], "writers": g.writers, "sql_via_vip": sql}


def _rabbit_node_json(n: RabbitNode) -> dict[str, Any]:
    f, v = n.facts, n.view
    return {"node": n.name, "nodename": n.nodename, "read": n.read, "serving": n.serving if n.read else None,
            "error": (f.local_error or None) if f else None,
            "view_running": list(v.running_nodes) if v else None, "view_error": (f.view_error or None) if f else None,
            "partitions": {k: list(p) for k, p in v.partitions.items()} if v else {},
            "alarms": sorted({f"{a.resource}@{a.node}" for a in (*(f.alarms if f else ()), *(v.alarms if v else ()))})}


def _rabbit_json(state: ClusterState) -> dict[str, Any]:
    r = state.rabbit
    queues = None if r.queues is None else [
        {"vhost": q.vhost, "name": q.name, "type": q.type, "leader": q.leader or None, "members": list(q.members),
         "online": list(q.online)} for q in r.queues if q.quorum]
    return {"expected": list(r.expected), "running": list(r.running), "nodes": [_rabbit_node_json(n) for n in r.nodes],
            "quorum_queues": queues, "queues_from": r.queues_from or None, "queues_error": r.queues_error or None}


def _haproxy_json(state: ClusterState) -> list[dict[str, Any]]:
    out = []
    for n in state.haproxy.nodes:
        backends = {}
        if n.stats is not None and n.stats.available:
            for b in state.haproxy.watched:
                backends[b] = {s.svname: {"status": s.status, "check": s.check_status, "backup": s.backup}
                               for s in n.stats.servers(b)}
        out.append({"node": n.name, "read": n.read, "answering": n.answering,
                    "error": n.stats.error if n.stats and not n.stats.available else None,
                    "galera_writer": state.galera.writers.get(n.name), "backends": backends})
    return out


def _pacemaker_json(state: ClusterState) -> dict[str, Any]:
    p = state.pacemaker
    ref = p.reference
    crm = ref.crm if ref else None
    nodes = [{"node": n.name, "read": n.read, "answering": n.answering,
              "state": next((x.state for x in crm.nodes if x.name == n.name), None) if crm else None,
              "quorum": n.crm.with_quorum if n.crm and n.crm.available else None,
              "agents_running": list(n.agents_active), "fail_counts": [
                  {"resource": c.resource, "count": c.count, "threshold": c.threshold}
                  for c in (ref.fail_counts if ref else ()) if c.node == n.name]}
             for n in p.nodes]
    group = crm.running_on(p.group) if crm else None
    return {"view_from": ref.name if ref else None, "quorum": crm.with_quorum if crm else None,
            "dc": crm.dc if crm else None, "group": p.group, "group_on": list(group) if group is not None else None,
            "fencing_expected": p.fencing_expected, "stonith_enabled": crm.stonith_enabled if crm else None,
            "fence_history": [{"target": e.target, "action": e.action, "status": e.status, "completed": e.completed}
                              for e in crm.fencing] if crm else [],
            "failed_actions": [{"resource": f.resource, "node": f.node, "task": f.task, "status": f.exitstatus,
                                "reason": f.exitreason, "at": f.last_rc_change} for f in crm.failures] if crm else [],
            "nodes": nodes}


def _openstack_json(state: ClusterState) -> dict[str, Any]:
    o = state.openstack
    cat = o.catalog
    return {"services": {s: {"deployed": o.deployed(s), "units": list(o.running_units.get(s, ()))}
                         for s in o.services},
            "apis": [{"name": a.name, "service": a.service, "url": a.url, "expected": a.expected, "status": a.status,
                      "error": a.error or None, "seconds": round(a.seconds, 3)} for a in o.apis],
            "service_lists": None if cat is None else {
                "checked": cat.checked, "error": cat.error or None, "errors": list(cat.errors),
                "rows": [{"type": r.kind, "binary": r.binary, "host": r.host, "up": r.up, "enabled": r.enabled}
                         for r in cat.rows]},
            "note": o.catalog_note or None}


def to_json(state: ClusterState, verdict: Verdict) -> dict[str, Any]:
    return {
        "topology": state.name, "file": state.topology_file, "collected_at": state.collected_at,
        "seconds": round(state.seconds, 3), "verdict": verdict.word, "exit_code": verdict.exit_code,
        "summary": verdict.summary(), "findings": [_finding(f) for f in verdict.findings],
        "hosts": [{"name": h.name, "roles": list(h.roles), "address": h.address, "reachable": h.reachable,
                   "read": h.read, "error": h.error or None, "seconds": round(h.seconds, 3),
                   "problems": [str(p) for p in h.problems]} for h in state.hosts],
        "galera": _galera_json(state), "rabbitmq": _rabbit_json(state),
        "vip": {"address": state.vip.address, "holders": list(state.vip.holders), "unread": list(state.vip.unread),
                "answers": state.vip.answers,
                "keepalived": {u.node: u.active for u in state.vip.keepalived}},
        "haproxy": _haproxy_json(state),
        "memcached": [{"node": m.name, "read": m.read, "answering": m.stats.answering if m.stats else None,
                       "error": (m.stats.error or None) if m.stats else None} for m in state.memcached],
        "pacemaker": _pacemaker_json(state), "openstack": _openstack_json(state),
    }


# -- Prometheus -------------------------------------------------------------------------------------


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
        m.add("findings", sum(f.level is level for f in verdict.findings), "Findings by level", level=level.word)
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
