"""ClusterState + Verdict -> a rich table per layer; the JSON and Prometheus renderings live in
export_json.py and prometheus.py and are re-exported here.

The three carry the same facts: JSON for monitoring that reads documents, Prometheus for
scrapers (`hastack_*` metrics with node/backend labels), the tables for people. Nothing here
decides anything: the verdict is computed before, and rendered as it is.
"""

from __future__ import annotations

import time

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hastack.facts.pacemaker import FailCount
from hastack.status.export_json import to_json
from hastack.status.model import ClusterState, GaleraNode, PacemakerNode, RabbitNode, ServiceRow
from hastack.status.prometheus import to_prometheus
from hastack.status.verdict import Level, Verdict

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
    """`all 10 UP (3/3)` when every watched backend has every server UP, else the ones that do not."""
    node = next(n for n in state.haproxy.nodes if n.name == name)
    if not node.read:
        return Text("not read", style="dim")
    if node.stats is None or not node.stats.available:
        return Text(f"down: {node.stats.error if node.stats else ''}", style="red")
    counts = {b: (sum(s.up for s in node.stats.servers(b)), len(node.stats.servers(b))) for b in state.haproxy.watched}
    short = {b: c for b, c in counts.items() if c[0] < c[1]}
    if not short:
        sizes = sorted({c[1] for c in counts.values()})
        return Text(f"all {len(counts)} UP ({'/'.join(f'{n}/{n}' for n in sizes)})", style="green")
    out = Text()
    for i, (b, (up, total)) in enumerate(short.items()):
        out.append(("  " if i else "") + f"{b} {up}/{total}", style="yellow" if up else "red")
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
        t.caption = f"services: {services_caption(o.catalog.rows)}"
    elif o.catalog_note:
        t.caption = f"services: not listed ({o.catalog_note})"
    t.caption_justify = "left"
    return t


def services_caption(rows: tuple[ServiceRow, ...]) -> str:
    """Per binary: how many are up, and the hosts of those that are down."""
    by: dict[str, list[ServiceRow]] = {}
    for r in rows:
        by.setdefault(r.binary, []).append(r)
    parts = []
    for binary, rs in by.items():
        down = [r.host for r in rs if not r.up]
        parts.append(f"{binary} {len(rs) - len(down)}/{len(rs)} up" + (f" (DOWN: {', '.join(down)})" if down else ""))
    return ", ".join(parts) or "none listed"


def findings_table(verdict: Verdict) -> Table:
    t = _table("Findings", "level", "code", "what, and what to do")
    order = sorted(verdict.findings, key=lambda f: -f.severity.rank)
    for f in order:
        what = Text(f.message)
        if f.hint:
            what.append(f"\n-> {f.hint}", style="bold")
        t.add_row(Text(f.severity.word, style=LEVEL_STYLE[f.severity]), f.code, what)
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


__all__ = ["tables", "to_json", "to_prometheus"]
