"""Pacemaker rules on the trusted view (a quorate crm_mon, the DC's first): nodes, fencing, the
agent group, other resources, and the quorum helpers (qdevice, qnetd)."""

from __future__ import annotations

from collections.abc import Iterator

from hastack.facts import CrmMon, CrmResource
from hastack.status.model import ClusterState, PacemakerNode, PacemakerView
from hastack.status.rules_base import DEGRADED, DOWN, INFO
from hastack.status.verdict import Finding, finding

NODE_STATES = {
    "offline": ("PCMK-NODE-OFFLINE", "is offline", ""),
    "unclean": ("PCMK-NODE-UNCLEAN", "is unclean: it must be fenced before its resources move", ""),
    "standby": ("PCMK-NODE-STANDBY", "is in standby: it runs nothing", "`crm node online {node}`"),
    "maintenance": ("PCMK-NODE-MAINTENANCE", "is in maintenance: Pacemaker does not manage it",
                    "`crm node ready {node}`"),
    "pending": ("PCMK-NODE-PENDING", "is pending (joining the cluster)", ""),
}


def _crm(ref: PacemakerNode) -> CrmMon:
    assert ref.crm is not None
    return ref.crm


def nodes(s: ClusterState, ref: PacemakerNode) -> Iterator[Finding]:
    crm = _crm(ref)
    known = {n.name: n for n in crm.nodes}
    for p in s.pacemaker.nodes:
        node = known.get(p.name)
        if node is None:
            yield finding("PCMK-NODE-UNKNOWN", DEGRADED, "pacemaker", f"{p.name} is not a node of the cluster "
                          f"(seen by {ref.name})", f"`hastack deploy {s.topology_file}`", p.name)
            continue
        if node.state in NODE_STATES:
            code, text, step = NODE_STATES[node.state]
            yield finding(code, DEGRADED, "pacemaker", f"{p.name} {text} (seen by {ref.name})",
                          step.format(node=p.name), p.name)
    if crm.maintenance_mode:
        yield finding("PCMK-MAINTENANCE", DEGRADED, "pacemaker", "the cluster is in maintenance mode: nothing is "
                      "monitored or recovered", "`crm configure property maintenance-mode=false`")


def fencing(s: ClusterState, ref: PacemakerNode) -> Iterator[Finding]:
    crm = _crm(ref)
    p = s.pacemaker
    if not p.fencing_expected:
        yield finding("PCMK-FENCING-SWITCHED-OFF", INFO, "pacemaker",
                      f"fencing is switched off in the topology ({p.fencing_reason or 'no reason given'})")
    else:
        if crm.stonith_enabled is False:
            yield finding("PCMK-FENCING-OFF", DEGRADED, "pacemaker", "stonith-enabled is false although the "
                          "topology wants fencing: a split brain can run the agents twice",
                          f"`hastack deploy {s.topology_file}`")
        devices = [r for r in crm.resources if r.agent.startswith("stonith:")]
        if not devices:
            yield finding("PCMK-NO-FENCE-DEVICE", DEGRADED, "pacemaker", "no fence device is configured",
                          f"`hastack deploy {s.topology_file}`")
        targets = s.pacemaker.fence_devices
        for d in devices:
            if not d.active:
                target = targets.get(d.id, "")
                yield finding("PCMK-FENCE-STOPPED", DEGRADED, "pacemaker", f"fence device {d.id} is stopped: "
                              f"{target or 'its node'} cannot be fenced", "it runs on another network node: bring "
                              f"that one back online; if it stays stopped, `crm resource cleanup {d.id}`", target)
    yield from _history(crm)


def _history(crm: CrmMon) -> Iterator[Finding]:
    """The newest event per target (crm_mon lists the newest first)."""
    seen: set[str] = set()
    for e in crm.fencing:
        if e.target in seen:
            continue
        seen.add(e.target)
        by = f" by {e.delegate or e.origin}" if (e.delegate or e.origin) else ""
        when = f" at {e.completed}" if e.completed else ""
        if e.status == "failed":
            yield finding("PCMK-FENCE-FAILED", DEGRADED, "pacemaker", f"fencing ({e.action}) of {e.target} failed{by}"
                          f"{when}{': ' + e.exit_reason if e.exit_reason else ''}", node=e.target)
        else:
            yield finding("PCMK-FENCED", INFO, "pacemaker", f"{e.target} was fenced ({e.action}){by}{when}: {e.status}",
                          node=e.target)


def _members(crm: CrmMon, view: PacemakerView) -> list[CrmResource]:
    """The agents' resources: the primitives colocated with the cleanup resource, by id, and the
    members of a group of the set's name (what hastack deployed before the set; a cluster not yet
    deployed again, and the recorded cases, still hold it)."""
    return [r for r in crm.resources if not r.clone and (r.id in view.agent_units or r.group == view.group)]


def group(s: ClusterState, ref: PacemakerNode) -> Iterator[Finding]:
    crm = _crm(ref)
    name = s.pacemaker.group
    members = _members(crm, s.pacemaker)
    if not members and not s.pacemaker.agent_units:  # no neutron: the cluster keeps only its fencing
        return
    if not members:
        yield finding("PCMK-GROUP-MISSING", DOWN, "pacemaker", f"the agent group {name} is not configured",
                      f"`hastack deploy {s.topology_file}`")
        return
    where = sorted({n for r in members for n in r.nodes})
    stopped = [r.id for r in members if not r.active]
    if len(where) > 1 or any(len(r.nodes) > 1 for r in members):
        yield finding("PCMK-GROUP-SPLIT", DOWN, "pacemaker", f"the agent group {name} runs on {' and '.join(where)}",
                      f"run `hastack recover pacemaker {s.topology_file}`")
    elif len(stopped) == len(members):
        yield finding("PCMK-GROUP-STOPPED", DOWN, "pacemaker", f"the agent group {name} is stopped: no L3, DHCP or "
                      "metadata agent runs", f"run `hastack recover pacemaker {s.topology_file}`")
    elif stopped:
        yield finding("PCMK-GROUP-PARTIAL", DOWN, "pacemaker", f"{', '.join(stopped)} of {name} stopped (the rest on "
                      f"{', '.join(where)})", f"run `hastack recover pacemaker {s.topology_file}`")
    else:
        yield finding("PCMK-GROUP", INFO, "pacemaker", f"the agents run on {where[0]}", node=where[0])


def resources(s: ClusterState, ref: PacemakerNode) -> Iterator[Finding]:
    crm = _crm(ref)
    agents = _members(crm, s.pacemaker)
    for r in crm.resources:
        if r.blocked:
            yield finding("PCMK-BLOCKED", DOWN, "pacemaker", f"{r.id} is blocked: Pacemaker will not act on it",
                          f"fix the cause, then `crm resource cleanup {r.id}`")
        if r not in agents and not r.clone and len(r.nodes) > 1:
            yield finding("PCMK-MULTI-ACTIVE", DOWN, "pacemaker", f"{r.id} runs on {' and '.join(r.nodes)}",
                          f"`crm resource cleanup {r.id}`")
    for f in crm.failures:
        reason = ", ".join(x for x in (f.exitstatus, f.exitreason) if x)
        yield finding("PCMK-FAILED-ACTION", INFO, "pacemaker", f"{f.resource} {f.task} failed on {f.node} "
                      f"({reason}) at {f.last_rc_change}", f"once the cause is fixed: `crm resource cleanup "
                      f"{f.resource}`", f.node)
    for c in ref.fail_counts:
        if c.banned:
            yield finding("PCMK-FAILCOUNT-BANNED", DEGRADED, "pacemaker", f"{c.resource} failed {c.count} times on "
                          f"{c.node} (migration-threshold {c.threshold}): it cannot run there",
                          f"`crm resource cleanup {c.resource}`", c.node)
        else:
            yield finding("PCMK-FAILCOUNT", INFO, "pacemaker", f"{c.resource} failed {c.count} time(s) on {c.node} "
                          f"(moves away at {c.threshold})", node=c.node)


def quorum_units(s: ClusterState) -> Iterator[Finding]:
    for n in s.pacemaker.nodes:
        for u in n.units:
            if u.state is not None and u.state.exists and not u.state.active:
                yield finding("PCMK-UNIT-DOWN", DEGRADED, "pacemaker", f"{u.unit} is not running on {n.name} "
                              f"({u.state.active_state})", f"`systemctl start {u.unit}` on {n.name}", n.name)
    q = s.pacemaker.qnetd
    if q is not None and q.state is not None and not q.state.active:
        yield finding("QNETD-DOWN", DEGRADED, "pacemaker", f"corosync-qnetd is not running on {q.node}: the network "
                      "cluster has lost its third vote", f"`systemctl start corosync-qnetd` on {q.node}", q.node)
