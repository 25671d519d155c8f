"""Corosync (+ qdevice/qnetd) and Pacemaker on the network nodes, in two stages.

- `corosync`, before the OpenStack stage: certificates, corosync, qdevice and Pacemaker started
  (no wait). A new Pacemaker cluster elects its first DC only after `dc-deadtime` (20 s, a cluster
  property a new cluster cannot have yet): lab 2026-12-06, S_PENDING 21.2 s. Started here, that
  wait runs beside the OpenStack stage instead of after it.
- `pacemaker`, last but the logins: a DC, departed nodes removed, the configuration (fencing, the
  agents' group) loaded, the agents restarted where a file they read changed. Gate: every node
  online, the cluster quorate, the fencing devices started, and the agents (the cleanup resource
  and the agents colocated with it) running on exactly one node. Run alone (`--stage pacemaker`),
  it starts the cluster itself first.
"""

from __future__ import annotations

from hastack.components import api_watchdog, corosync, neutron, pacemaker
from hastack.deploy.engine import Deploy, StepFailed
from hastack.deploy.preview import gate, maybe, unit_steps
from hastack.deploy.reads import crm_state
from hastack.deploy.services import network_agents_gate
from hastack.deploy.systemd import ensure_disabled, ensure_running, unit_states
from hastack.facts import CrmMon
from hastack.facts.pacemaker import CrmNode, pem_body, resource_ids, running_nodeid, trusted_qnetd_ca
from hastack.plan.steps import Step
from hastack.topology.model import Node, Topology


def group_nodes(st: CrmMon, units: list[str]) -> tuple[str, ...]:
    """Where any of the agents' resources runs (one node when all is well)."""
    return tuple(sorted({n for u in units for n in st.running_on(pacemaker.agent_id(u))}))


def agents_to_restart(topo: Topology, changed_paths: dict[str, set[str]]) -> list[str]:
    """The agents (in start order) that read a file this deploy changed on a network node; never
    the namespace cleanup, which reads nothing when it starts."""
    reads = neutron.cluster_agent_files(topo) if topo.runs("neutron") else {}
    written = set().union(*(changed_paths.get(n.name, set()) for n in topo.network_nodes))
    return [u for u in pacemaker.group_units(topo) if written & set(reads.get(u, ()))]


DEPARTED_ONLINE = "PCMK-DEPARTED-ONLINE"
NODEID_CHANGED = "COROSYNC-NODEID-CHANGED"


def nodeid_changed(running: int, want: int) -> str:
    return (f"corosync runs as nodeid {running}, the new corosync.conf numbers this node {want} (hastack derives "
            "node ids from addresses since 2026-12-06) and corosync cannot change a running node's id: stop the "
            "cluster on every network node (`crm cluster stop`), then deploy again")


def departed_nodes(topo: Topology, st: CrmMon) -> list[CrmNode]:
    """Member nodes Pacemaker knows that the topology no longer lists."""
    want = {n.name for n in topo.network_nodes}
    return [n for n in st.nodes if n.type == "member" and n.name not in want]


def not_forgotten(alive: list[str]) -> str:
    return (f"{', '.join(alive)} still online in the Pacemaker cluster but the topology no longer lists them: stop "
            "the cluster there (`crm cluster stop`) or power the host off, then deploy again; or put the node back "
            "in the topology (`hastack retire NODE` with it does all of this cleanly)")


def configuration_due(topo: Topology, ids: frozenset[str], script_changed: bool) -> tuple[bool, list[str]]:
    """Whether the configuration is loaded (its script changed, the group or the fencing is not in
    the CIB, or objects of ours are stale), and the stale objects to delete as it is."""
    if units := pacemaker.group_units(topo):
        configured = all(pacemaker.agent_id(u) in ids for u in units)
    else:  # fencing only: any fence device of ours
        configured = any(i.startswith(pacemaker.fence_id_prefix()) for i in ids)
    stale = pacemaker.stale_resources(topo, sorted(ids))
    return script_changed or not configured or bool(stale), stale


class CorosyncStage:
    name = "corosync"

    def applies(self, d: Deploy) -> bool:
        return bool(d.topo.network_nodes)

    async def run(self, d: Deploy) -> None:
        await PacemakerStage().form(d)

    async def preview(self, d: Deploy) -> list[Step]:
        return await PacemakerStage().form_preview(d, self.name)


class PacemakerStage:
    name = "pacemaker"

    def applies(self, d: Deploy) -> bool:
        return bool(d.topo.network_nodes)

    async def run(self, d: Deploy) -> None:
        members = d.topo.network_nodes
        if not any(t.name == CorosyncStage.name for t in d.timings):
            await self.form(d)
        await self.wait_dc(d, members[0].name)
        st = await self.forget_departed(d, members[0].name)
        running_before = group_nodes(st, pacemaker.group_units(d.topo))
        await self.configure(d, members[0].name)
        await self.gate(d)
        if running_before:
            await self.restart_changed_agents(d, members[0].name)
        # The watchdog guards the agents the group runs: started once the group is up and alive.
        watched = [n for n in members if api_watchdog.COMPONENT.applies(d.topo, n)]
        await d.each(watched, lambda n: self.start(d, n, api_watchdog.UNIT))

    async def preview(self, d: Deploy) -> list[Step]:
        members = d.topo.network_nodes
        host = members[0].name
        out = [gate(self.name, "a DC, quorum and every network node online")]
        st = await maybe(crm_state(d, host))
        if st is None or not st.available:
            st = None
            out.append(Step(self.name, host, "check", "network nodes Pacemaker knows that the topology no longer "
                                                      "lists (removed once they are down)"))
        else:
            departed = departed_nodes(d.topo, st)
            # The corosync stage's reload of a changed corosync.conf drops the departed node from the
            # membership before this stage reads it: online now is a stop only if nothing drops it.
            dropped = any(corosync.CONF in d.changed_paths.get(n.name, set()) for n in members)
            if not dropped and (alive := [n.name for n in departed if n.online]):
                return [*out, Step(self.name, host, "refuse", f"forget network nodes the topology left out: "
                                                              f"{not_forgotten(alive)}", DEPARTED_ONLINE)]
            out += [Step(self.name, host, "change", f"remove {n.name} from Pacemaker (crm_node --remove)"
                         + (" once the corosync.conf reload has dropped it (deploy stops if it is still online "
                            "then)" if n.online else "")) for n in departed]
        ids = await maybe(d.fact(host, resource_ids(), "read the CIB"))
        if ids is None:
            out.append(Step(self.name, host, "change", "load the configuration (crm configure load update; the CIB "
                                                       "cannot be read now)"))
        else:
            apply, stale = configuration_due(d.topo, ids, pacemaker.SCRIPT in d.changed_paths.get(host, set()))
            if apply:
                out.append(Step(self.name, host, "change", "apply the configuration: fencing and the agents' group "
                                                           "(crm configure load update, one commit)"
                                + (f", deleting {', '.join(stale)}" if stale else "")))
        out.append(gate(self.name, "every node online, quorum, the fencing devices started, the agents on exactly "
                                   "one node and alive in Neutron"))
        if st is not None and group_nodes(st, pacemaker.group_units(d.topo)):
            for unit in agents_to_restart(d.topo, d.changed_paths):
                out.append(Step(self.name, host, "change", f"restart {pacemaker.agent_id(unit)} where it runs "
                                                           "(crm_resource --restart: its configuration changes)"))
        for n in members:
            if api_watchdog.COMPONENT.applies(d.topo, n):
                out += await unit_steps(d, self.name, n.name, [api_watchdog.UNIT])
        return out

    async def form_preview(self, d: Deploy, stage: str) -> list[Step]:
        members = d.topo.network_nodes
        group = pacemaker.group_units(d.topo)
        out: list[Step] = []
        for n in members:
            owned = group + ([] if n.has("controller") else ["haproxy", "keepalived"])
            states = await maybe(unit_states(d, n.name, owned))
            for unit in owned:
                st = states[unit] if states else None
                if st is None or st.unit_file_state == "enabled":
                    out.append(Step(stage, n.name, "change", f"disable {unit} (Pacemaker starts it)"
                                    + ("" if st else ", if it is enabled")))
                if unit not in group and (st is None or st.active):
                    out.append(Step(stage, n.name, "change", f"stop {unit} (not on a network node)"))
        if d.topo.qnetd_nodes:
            out.append(Step(stage, "", "check", "the qdevice TLS certificates (the exchange is redone when a member "
                                                "lacks one or trusts another CA)"))
            out += await unit_steps(d, stage, d.topo.qnetd_nodes[0].name, ["corosync-qnetd"])
        for n in members:
            out += await unit_steps(d, stage, n.name, ["corosync"])
        # as reload_corosync: a changed corosync.conf under a corosync that runs and that this deploy
        # does not (re)start anyway
        conf = []
        for m in members:
            if corosync.CONF in d.changed_paths.get(m.name, set()) and not d.needs_restart(m.name, "corosync"):
                cs = await maybe(unit_states(d, m.name, ["corosync"]))
                if cs is None or cs["corosync"].active:
                    conf.append(m)
        for m in conf:
            running = await maybe(d.fact(m.name, running_nodeid(), "read the nodeid corosync runs with"))
            if running is not None and running != corosync.nodeid(m):
                out.append(Step(stage, m.name, "refuse", nodeid_changed(running, corosync.nodeid(m)), NODEID_CHANGED))
        if conf:
            out.append(Step(stage, conf[0].name, "change", "reload corosync.conf on every member where corosync runs "
                                                           "(no restart)" + (", then restart corosync-qdevice"
                                                                             if d.topo.qnetd_nodes else "")))
        units = (["corosync-qdevice"] if d.topo.qnetd_nodes else []) + ["pacemaker"]
        for unit in units:
            for n in members:
                out += await unit_steps(d, stage, n.name, [unit])
        return out

    async def form(self, d: Deploy) -> None:
        """The cluster's daemons running with the rendered configuration (the corosync stage)."""
        members = d.topo.network_nodes
        await d.each(members, lambda n: self.prepare(d, n))
        if d.topo.qnetd_nodes:
            await self.certificates(d, members)
            await self.qnetd(d, d.topo.qnetd_nodes[0])
        await d.each(members, lambda n: self.start(d, n, "corosync"))
        await self.reload_corosync(d, members)
        if d.topo.qnetd_nodes:
            await d.each(members, lambda n: self.start(d, n, "corosync-qdevice"))
        await d.each(members, lambda n: self.start(d, n, "pacemaker"))

    async def prepare(self, d: Deploy, node: Node) -> None:
        # Pacemaker alone starts the group's units; haproxy and keepalived arrive as dependencies of
        # the L3 agent and must not run on a network node that is not also a controller.
        owned = pacemaker.group_units(d.topo) + ([] if node.has("controller") else ["haproxy", "keepalived"])
        await ensure_disabled(d, node.name, owned)
        for unit in owned:
            if unit not in pacemaker.group_units(d.topo):
                await d.run(node.name, ["systemctl", "stop", unit], f"stop {unit}")
        for di in pacemaker.DIRS:
            await d.run(node.name, ["install", "-d", "-o", di.owner, "-g", di.group, "-m", f"{di.mode:o}", di.path],
                        f"directory {di.path}")

    async def start(self, d: Deploy, node: Node, unit: str) -> None:
        await ensure_running(d, node.name, unit)

    async def qnetd(self, d: Deploy, node: Node) -> None:
        await ensure_running(d, node.name, "corosync-qnetd")

    async def reload_corosync(self, d: Deploy, members: list[Node]) -> None:
        """A corosync.conf that changed under a running corosync: reloaded (see corosync.RELOAD), and
        qdevice restarted on the members to take the new quorum device settings."""
        changed = [m for m in members if corosync.CONF in d.changed_paths.get(m.name, set())
                   and "corosync" not in d.started.get(m.name, set())]
        if not changed:
            return
        for m in changed:
            running = await d.fact(m.name, running_nodeid(), "read the nodeid corosync runs with")
            if running is not None and running != corosync.nodeid(m):
                raise StepFailed(m.name, "reload corosync.conf", nodeid_changed(running, corosync.nodeid(m)),
                                 code=NODEID_CHANGED)
        await d.run(changed[0].name, list(corosync.RELOAD), "reload corosync.conf on every member")
        d.changed(changed[0].name, "reloaded corosync.conf on every member (no restart)")
        if d.topo.qnetd_nodes:
            for m in members:
                d.restarts.setdefault(m.name, set()).add("corosync-qdevice")

    async def certificates(self, d: Deploy, members: list[Node]) -> None:
        """The qdevice TLS exchange (corosync-qdevice-net-certutil(8)), run when a member lacks its
        client certificate or trusts another CA than the qnetd's (the arbitrator was replaced: the
        new qnetd made its own CA); it starts from empty member databases, so a half-done run is
        redone."""
        checks = [await d.run(m.name, list(corosync.HAS_CLUSTER_CERT), "check the qdevice certificate",
                              check=False) for m in members]
        arb = d.topo.qnetd_nodes[0].name
        qnetd_ca = await d.transports[arb].get(corosync.QNETD_CA)
        trusted = [await d.fact(m.name, trusted_qnetd_ca(corosync.QDEVICE_DB), "read the qnetd CA the member trusts")
                   for m in members]
        want = pem_body(qnetd_ca.decode()) if qnetd_ca else ""
        current = bool(qnetd_ca) and all(t == want for t in trusted)
        if all(r.ok for r in checks) and current:
            return
        for step in corosync.qdevice_tls_steps(d.topo):
            d.checkpoint()
            if isinstance(step, corosync.Copy):
                data = await d.transports[step.src_host].get(step.src)
                if data is None:
                    raise StepFailed(step.src_host, f"copy {step.src}", "file missing", code="QDEVICE-FILE-MISSING")
                await d.transports[step.dest_host].put(step.dest, data, owner="root", group="root", mode=step.mode)
                continue
            if step.unless and (await d.run(step.host, list(step.unless), step.why, check=False)).ok:
                continue
            await d.run(step.host, list(step.argv), step.why)
        for m in members:
            d.restarts.setdefault(m.name, set()).add("corosync-qdevice")
            d.changed(m.name, "qdevice TLS certificate installed")

    async def wait_dc(self, d: Deploy, host: str) -> None:
        want = {n.name for n in d.topo.network_nodes}

        async def probe() -> tuple[bool, object]:
            st = await crm_state(d, host)
            online = set(st.nodes_in("online"))
            ok = bool(st.dc) and st.with_quorum and want <= online  # more: forget_departed says so
            return ok, f"dc={st.dc or None} quorate={st.with_quorum} online={sorted(online)}"

        await d.wait(host, "wait for the cluster", probe,
                     what="a DC, quorum and every network node online", timeout=120, interval=1)

    async def forget_departed(self, d: Deploy, host: str) -> CrmMon:
        """Network nodes Pacemaker still knows that the topology no longer lists (a replaced one):
        removed from its node list and caches (`crm_node --remove`) once they are down, which the
        corosync.conf reload before made them for Corosync. One still online stops the stage: deploy
        has no way to that host any more. Their fence devices go with the configuration
        (`pacemaker.stale_resources`). Returns the state it read: where the agents run (removing an
        offline node moves none)."""
        st = await crm_state(d, host)
        departed = departed_nodes(d.topo, st)
        if alive := [n.name for n in departed if n.online]:
            raise StepFailed(host, "forget network nodes the topology left out", not_forgotten(alive),
                             code=DEPARTED_ONLINE)
        for n in departed:
            await d.run(host, ["crm_node", "--force", "--remove", n.name], f"remove {n.name} from Pacemaker")
            d.changed(host, f"removed {n.name} from the Pacemaker cluster (its host is no longer in the topology)")
        return st

    async def configure(self, d: Deploy, host: str) -> None:
        ids = await d.fact(host, resource_ids(), "read the CIB")
        live = sorted(ids)
        apply, stale = configuration_due(d.topo, ids, pacemaker.SCRIPT in d.changed_paths.get(host, set()))
        if apply:
            # one crmsh session, one commit: the stale objects go as the file's objects arrive
            await d.run(host, pacemaker.apply_argv(stale), "apply the Pacemaker configuration"
                        + (f" (and delete {', '.join(stale)})" if stale else ""),
                        stdin=pacemaker.configure_commands(d.topo, live), timeout=120)
            d.changed(host, "applied the Pacemaker configuration"
                      + (f" (deleted {', '.join(stale)}, on a copy of the CIB)" if stale else ""))

    async def restart_changed_agents(self, d: Deploy, host: str) -> None:
        """An agent Pacemaker runs reads its files only when it starts, and systemd does not own it:
        when deploy changed them (a replaced controller changes every transport_url and memcached
        list), Pacemaker restarts it where it runs (`crm_resource --restart` waits for the stop and
        the start), one agent at a time, then the agents must be alive in Neutron again. Not on the
        deploy that first starts them: they started with these files."""
        changed = agents_to_restart(d.topo, d.changed_paths)
        for unit in changed:
            rid = pacemaker.agent_id(unit)
            await d.run(host, ["crm_resource", "--restart", "--resource", rid, "--timeout", "180s"],
                        f"restart {rid} (its configuration changed)", timeout=240)
            d.changed(host, f"restarted {rid} through Pacemaker (its configuration changed)")
        if changed:
            await self.gate(d)

    async def gate(self, d: Deploy) -> None:
        host = d.topo.network_nodes[0].name
        fences = [pacemaker.fence_id(n) for n in d.topo.network_nodes if n.fencing] if d.topo.fencing.enabled else []

        async def probe() -> tuple[bool, object]:
            st = await crm_state(d, host)
            group = pacemaker.group_units(d.topo)
            where = group_nodes(st, group)
            ok = all(len(st.running_on(u)) == 1 for u in group) and len(where) == (1 if group else 0)
            started = [f for f in fences if st.running_on(f)]
            ok = ok and started == fences and not st.nodes_in("unclean")
            failed = [f.op_key for f in st.failures]
            return ok, f"agents on {list(where)}, fencing started {started}, failed actions {failed}"

        await d.wait(host, "gate: Pacemaker", probe,
                     what="fencing started and the agents on exactly one node", timeout=180, interval=1)
        await network_agents_gate(d)  # and Neutron sees them alive, once, under the shared identity
