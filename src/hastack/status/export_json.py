"""ClusterState + Verdict -> the JSON document `hastack status --json` prints (for monitoring).

The same facts as the tables, keyed for machines: every layer per node, the findings with their
codes and next steps, the verdict and its exit code.
"""

from __future__ import annotations

from typing import Any

from hastack.status.model import ClusterState, RabbitNode
from hastack.status.verdict import Finding, Verdict


def _finding(f: Finding) -> dict[str, Any]:
    return {"code": f.code, "level": f.severity.word, "layer": f.area, "node": f.subject or None, "message": f.message,
            "next_step": f.hint or None}


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
    """Every frontend's and backend's status; the servers of the backends that matter (galera
    and the deployed APIs: the others have no server yet)."""
    out = []
    for n in state.haproxy.nodes:
        backends: dict[str, Any] = {}
        frontends: dict[str, str] = {}
        if n.stats is not None and n.stats.available:
            frontends = {r.pxname: r.status for r in n.stats.rows if r.type == "frontend"}
            for r in n.stats.rows:
                if r.type == "backend":
                    backends[r.pxname] = {"status": r.status, "servers": {
                        s.svname: {"status": s.status, "check": s.check_status, "backup": s.backup}
                        for s in n.stats.servers(r.pxname)} if r.pxname in state.haproxy.watched else None}
        out.append({"node": n.name, "read": n.read, "answering": n.answering,
                    "error": n.stats.error if n.stats and not n.stats.available else None,
                    "galera_writer": state.galera.writers.get(n.name), "frontends": frontends,
                    "backends": backends})
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
