"""`hastack retire NODE`: a node that still runs, taken out of every cluster cleanly, before the
operator removes it from the topology and runs deploy.

Deploy converges membership on the topology (a node left out is forgotten by Galera, RabbitMQ and
Pacemaker, its service rows deleted), but only once that node is down: it has no way to a host the
topology no longer names, and a member still running would keep a vote. Powering the host off is
one way; retiring it is the clean one, for a server that is being replaced or given back:

- a controller: its servers in every HAProxy drained (requests in flight finish; the writes move
  to the next Galera node before MariaDB stops, not after a failed check), keepalived stopped (the
  VIP moves at once: a stopping keepalived announces priority 0), its OpenStack units, memcached
  and HAProxy stopped, its broker put in maintenance (`rabbitmq-upgrade drain`: quorum-queue
  leaders move, clients are told to reconnect elsewhere) and stopped, MariaDB stopped (a clean
  leave: the cluster shrinks, no vote is lost);
- a network node: put in standby (Pacemaker moves the agents to the other node, gated), then its
  cluster stack stopped;
- a compute node: nova-compute and its L2 agent stopped (instances are not moved: live-migrate
  them first);
- a non-controller arbitrator: its broker drained and stopped, garbd stopped.
Every unit it stops is also disabled, so a reboot does not bring the node back into a cluster.
Refused, before anything is touched, when a peer is already missing (the node's vote would be the
second one lost) or when the node is the network cluster's quorum device (qnetd).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hastack.components import galera, haproxy, keepalived, pacemaker, rabbitmq
from hastack.deploy import drain
from hastack.deploy.engine import Deploy, StepFailed
from hastack.deploy.reads import crm_state, rabbit_cluster, wsrep
from hastack.deploy.stages.pacemaker import group_nodes
from hastack.deploy.stages.vip import vip_holders
from hastack.topology.model import Node

STEP = "retire"


def refusals(d: Deploy, node: Node) -> list[str]:
    """What makes retiring this node unsafe whatever the clusters' state (checked first)."""
    out = []
    if node in d.topo.qnetd_nodes:
        out.append(f"{node.name} runs corosync-qnetd, the network cluster's quorum device: give the 'arbitrator' "
                   "role to another node and deploy first")
    if node.has("controller") and len(d.topo.controllers) == 1:
        out.append(f"{node.name} is the only controller")
    return out


def plan(d: Deploy, node: Node) -> list[str]:
    """What retire will do, in order (printed before it asks)."""
    lines = [f"retire {node.name} ({node.address}):"]
    if node.has("network"):
        lines += [f"  put {node.name} in standby in Pacemaker; wait until the agents run on another network node",
                  f"  stop the cluster stack on {node.name} (pacemaker, corosync"
                  f"{', qdevice' if d.topo.qnetd_nodes else ''})"]
    if node.has("controller"):
        lines += [f"  in every HAProxy: {node.name}'s API servers drained, its Galera server out of rotation "
                  "(writes move to the next node)",
                  f"  stop keepalived on {node.name} (the VIP moves if it is there); wait for the VIP elsewhere",
                  f"  stop {node.name}'s OpenStack services, memcached and HAProxy"]
    if node in d.topo.brokers:
        lines.append(f"  RabbitMQ on {node.name}: maintenance mode (queue leaders move away, clients reconnect "
                     "elsewhere), then stop")
    if node.has("controller"):
        lines.append(f"  stop MariaDB on {node.name}: it leaves the Galera cluster cleanly")
    if node in d.topo.garbd_nodes:
        lines.append(f"  stop garbd on {node.name}")
    if node.has("compute"):
        lines.append(f"  stop nova-compute and the L2 agent on {node.name} (instances are not moved)")
    lines += [f"  disable every unit stopped, so a reboot does not bring {node.name} back into a cluster",
              f"then: remove {node.name} from the topology (or put its successor in its place) and run "
              "`hastack deploy`: the clusters forget it"]
    return lines


async def check(d: Deploy, node: Node) -> None:
    """Every peer present: the node's vote must not be the second one missing."""
    if why := refusals(d, node):
        raise StepFailed(node.name, STEP, "; ".join(why), code="RETIRE-REFUSED")
    if node.has("controller"):
        st = await wsrep(d, node.name)
        if not st.synced or st.cluster_size != d.topo.galera_votes:
            raise StepFailed(node.name, f"{STEP}: Galera", f"the cluster has {st.cluster_size} of "
                             f"{d.topo.galera_votes} votes and this node is {st.state or 'not answering'}: "
                             "retire a node only from a whole cluster (`hastack status`)",
                             code="RETIRE-CLUSTER-NOT-WHOLE")
    if node in d.topo.brokers:
        view = await rabbit_cluster(d, node.name)
        want = sorted(rabbitmq.nodename(n) for n in d.topo.brokers)
        if sorted(view.running_nodes) != want or view.partitioned:
            raise StepFailed(node.name, f"{STEP}: RabbitMQ", f"running brokers {sorted(view.running_nodes)}, "
                             f"expected {want}: retire a broker only from a whole cluster",
                             code="RETIRE-CLUSTER-NOT-WHOLE")
    if node.has("network"):
        crm = await crm_state(d, node.name)
        online = set(crm.nodes_in("online"))
        missing = sorted({n.name for n in d.topo.network_nodes} - online)
        if missing or not crm.with_quorum:
            raise StepFailed(node.name, f"{STEP}: Pacemaker", f"offline: {missing}, quorate: {crm.with_quorum}: "
                             "retire a network node only from a whole cluster", code="RETIRE-CLUSTER-NOT-WHOLE")


CLUSTER_STACK = ("pacemaker", "corosync-qdevice", "corosync", "corosync-qnetd")


@dataclass
class Retire:
    d: Deploy
    node: Node
    stopped: set[str] = field(default_factory=set)

    async def stop(self, units: list[str], why: str) -> None:
        """Stopped and disabled, together, in one call (a unit this host does not have is fine)."""
        units = [u for u in units if u not in self.stopped]
        if not units:
            return
        await self.d.run(self.node.name, ["systemctl", "disable", "--now", "--quiet", *units], f"stop {why}",
                         timeout=600)
        self.stopped.update(units)
        self.d.changed(self.node.name, f"stopped and disabled {', '.join(units)}")

    async def network(self) -> None:
        d, node = self.d, self.node
        peer = next(n.name for n in d.topo.network_nodes if n.name != node.name)
        units = pacemaker.group_units(d.topo)
        await d.run(peer, ["crm", "node", "standby", node.name], f"put {node.name} in standby")
        d.changed(peer, f"{node.name} in standby: Pacemaker moves its resources away")

        async def moved() -> tuple[bool, object]:
            st = await crm_state(d, peer)
            where = group_nodes(st, units)
            return bool(where) and node.name not in where, f"agents on {list(where)}"

        await d.wait(peer, "wait for the agents on another node", moved, what=f"the agents away from {node.name}",
                     timeout=180, interval=1)
        await self.stop([u for u in CLUSTER_STACK if u in d.desired[node.name].units], "the cluster stack")

    async def controller(self) -> None:
        d, node = self.d, self.node
        await drain.drained(d, node, [a.name for a in haproxy.apis(d.topo)], "going on")
        # the writes: this server out of rotation and its sessions ended, so clients reconnect to the
        # next node now rather than after the checks see MariaDB gone
        await drain.admin(d, f"set server {haproxy.GALERA_PROXY}/{node.name} state maint; "
                             f"shutdown sessions server {haproxy.GALERA_PROXY}/{node.name}",
                          f"HAProxy: {node.name}'s database server out of rotation")
        await self.stop([keepalived.GUARD_UNIT, keepalived.UNIT, keepalived.QUORUM_UNIT], "keepalived")
        others = [n.name for n in d.topo.controllers if n.name != node.name]

        async def vip_elsewhere() -> tuple[bool, object]:
            holders = await vip_holders(d)
            return len(holders) == 1 and holders[0] in others, holders

        await d.wait(others[0], "wait for the VIP on another controller", vip_elsewhere,
                     what="the VIP on exactly one other controller", timeout=60, interval=0.5)
        keep = {rabbitmq.UNIT, "mariadb", galera.CHECK_SOCKET, *CLUSTER_STACK}
        await self.stop([u for u in d.desired[node.name].units if u not in keep],
                        "the OpenStack services, memcached and HAProxy")

    async def broker(self) -> None:
        await self.d.run(self.node.name, ["rabbitmq-upgrade", "--timeout", "120", "drain"],
                         "RabbitMQ maintenance mode", timeout=180)
        self.d.changed(self.node.name, f"{rabbitmq.nodename(self.node)} in maintenance: its queue leaders moved, "
                                       "its clients sent elsewhere")
        # its dead-peer watch first: a broker on its way out has no peers to drop
        watch = [rabbitmq.PEERS_UNIT] if rabbitmq.peer_watch(self.d.topo) else []
        await self.stop([*watch, rabbitmq.UNIT], "RabbitMQ")

    async def run(self) -> None:
        d, node = self.d, self.node
        await check(d, node)
        d.stage = STEP
        if node.has("network"):
            await self.network()
        if node.has("controller"):
            await self.controller()
        if node in d.topo.brokers:
            await self.broker()
        if node.has("controller"):
            await self.stop([*galera.backup_timers(d.topo), galera.CHECK_SOCKET, galera.CHECK_SERVICE, "mariadb"],
                            "MariaDB (it leaves the Galera cluster)")
        # last, the dead-peer watch of a host of services (a broker's stopped with it above)
        watch = [rabbitmq.PEERS_UNIT] if rabbitmq.runs_watch(d.topo, node) else []
        await self.stop([*d.desired[node.name].units, *watch], "the node's other units")


async def retire(d: Deploy, node: Node) -> None:
    await Retire(d, node).run()
