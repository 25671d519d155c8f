"""Stage 6: Corosync (+ qdevice/qnetd) and Pacemaker on the network nodes.

Gate: every node online, the cluster quorate, the fencing devices started, and the agent group
running on exactly one node.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from hastack.components import corosync, pacemaker
from hastack.deploy.engine import Deploy, StepFailed
from hastack.deploy.systemd import ensure_disabled, ensure_running
from hastack.deploy.wait import GateTimeout, until
from hastack.topology.model import Node


@dataclass
class CrmState:
    dc: bool = False
    quorate: bool = False
    online: set[str] = field(default_factory=set)
    offline: set[str] = field(default_factory=set)
    unclean: set[str] = field(default_factory=set)
    running: dict[str, set[str]] = field(default_factory=dict)
    """resource id -> nodes it is active on."""
    failed: list[str] = field(default_factory=list)


def parse_crm_mon(xml_text: str) -> CrmState:
    """`crm_mon -1 --output-as=xml` (Pacemaker 2.1)."""
    root = ET.fromstring(xml_text)
    st = CrmState()
    dc = root.find("./summary/current_dc")
    if dc is not None:
        st.dc = dc.get("present") == "true"
        st.quorate = dc.get("with_quorum") == "true"
    for n in root.iterfind("./nodes/node"):
        name = n.get("name", "")
        (st.online if n.get("online") == "true" else st.offline).add(name)
        if n.get("unclean") == "true":
            st.unclean.add(name)
    for r in root.iter("resource"):
        if r.get("active") == "true":
            st.running[r.get("id", "")] = {x.get("name", "") for x in r.iterfind("node")}
        if r.get("failed") == "true":
            st.failed.append(r.get("id", ""))
    return st


def group_nodes(st: CrmState) -> set[str]:
    out: set[str] = set()
    for unit in pacemaker.AGENT_UNITS:
        out |= st.running.get(unit, set())
    return out


async def crm_state(d: Deploy, host: str) -> CrmState:
    res = await d.run(host, ["crm_mon", "-1", "--output-as=xml"], "read cluster state", timeout=20)
    return parse_crm_mon(res.stdout)


class PacemakerStage:
    name = "pacemaker"

    def applies(self, d: Deploy) -> bool:
        return bool(d.topo.network_nodes)

    async def run(self, d: Deploy) -> None:
        members = d.topo.network_nodes
        await d.each(members, lambda n: self.prepare(d, n))
        if d.topo.qnetd_nodes:
            await self.certificates(d, members)
            await self.qnetd(d, d.topo.qnetd_nodes[0])
        await d.each(members, lambda n: self.start(d, n, "corosync"))
        if d.topo.qnetd_nodes:
            await d.each(members, lambda n: self.start(d, n, "corosync-qdevice"))
        await d.each(members, lambda n: self.start(d, n, "pacemaker"))
        await self.wait_dc(d, members[0].name)
        await self.configure(d, members[0].name)
        await self.gate(d)

    async def prepare(self, d: Deploy, node: Node) -> None:
        await ensure_disabled(d, node.name, list(pacemaker.AGENT_UNITS))
        for di in pacemaker.DIRS:
            await d.run(node.name, ["install", "-d", "-o", di.owner, "-g", di.group, "-m", f"{di.mode:o}", di.path],
                        f"directory {di.path}")

    async def start(self, d: Deploy, node: Node, unit: str) -> None:
        await ensure_running(d, node.name, unit)

    async def qnetd(self, d: Deploy, node: Node) -> None:
        await ensure_running(d, node.name, "corosync-qnetd")

    async def certificates(self, d: Deploy, members: list[Node]) -> None:
        """The qdevice TLS exchange (corosync-qdevice-net-certutil(8)), run only when a member lacks
        its client certificate; it starts from empty member databases, so a half-done run is redone."""
        checks = [await d.run(m.name, list(corosync.HAS_CLUSTER_CERT), "check the qdevice certificate",
                              check=False) for m in members]
        if all(r.ok for r in checks):
            return
        for step in corosync.qdevice_tls_steps(d.topo):
            d.checkpoint()
            if isinstance(step, corosync.Copy):
                data = await d.transports[step.src_host].get(step.src)
                if data is None:
                    raise StepFailed(step.src_host, f"copy {step.src}", "file missing")
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
            return st.dc and st.quorate and st.online == want, f"dc={st.dc} quorate={st.quorate} online={st.online}"

        try:
            await until(probe, what="a DC, quorum and every network node online", timeout=120, interval=1)
        except GateTimeout as exc:
            raise StepFailed(host, "wait for the cluster", str(exc)) from exc

    async def configure(self, d: Deploy, host: str) -> None:
        res = await d.run(host, ["cibadmin", "-Q", "-o", "resources"], "read the CIB")
        changed = pacemaker.SCRIPT in d.changed_paths.get(host, set())
        if changed or f'id="{pacemaker.GROUP}"' not in res.stdout:
            await d.run(host, ["crm", "configure", "load", "update", pacemaker.SCRIPT], "apply the Pacemaker "
                        "configuration", timeout=120)
            d.changed(host, "applied the Pacemaker configuration")

    async def gate(self, d: Deploy) -> None:
        host = d.topo.network_nodes[0].name
        fences = [pacemaker.fence_id(n) for n in d.topo.network_nodes if n.fencing] if d.topo.fencing.enabled else []

        async def probe() -> tuple[bool, object]:
            st = await crm_state(d, host)
            where = group_nodes(st)
            ok = all(len(st.running.get(u, set())) == 1 for u in pacemaker.AGENT_UNITS) and len(where) == 1
            ok = ok and all(f in st.running for f in fences) and not st.unclean
            return ok, f"agents on {sorted(where)}, fencing started {[f for f in fences if f in st.running]}, " \
                       f"failed {st.failed}"

        try:
            await until(probe, what="fencing started and the agent group on exactly one node", timeout=180,
                        interval=1)
        except GateTimeout as exc:
            raise StepFailed(host, "gate: Pacemaker", str(exc)) from exc
