"""Stage 3: RabbitMQ. Brokers that have a database start together (a lone broker waits for its
peers, then gives up); new ones (no database yet) start after them and join; a new cluster is
formed by its first broker alone, the others joining it together. Every broker loads users and
vhosts from the rendered definitions (no `guest`).

Why a new cluster is not booted all at once: every broker imports the definitions at boot, and
when three empty brokers do so together their vhost creations wait on each other: on the lab
(2026-12-06, RabbitMQ 3.10.8) each "Adding vhost" took 47 s and the stage 66 s; the first broker
alone, then the other two, take about half.

Membership follows the topology. A broker the topology no longer lists is forgotten by the
cluster (`forget_cluster_node`, which also drops it from every quorum queue) before any broker
restarts: a quorum queue that still counted a dead member could lose its majority to a rolling
restart. A broker that joins gets a replica of every quorum queue (`rabbitmq-queues grow`), so the
queues have the shape of a fresh deploy again (one replica per broker). A broker the topology left
out but that still runs is not stopped from here (deploy has no way to that host any more): the
stage stops and says so.
"""

from __future__ import annotations

import asyncio

from hastack.components import rabbitmq
from hastack.deploy.engine import Deploy, StepFailed
from hastack.deploy.preview import gate, maybe, unit_steps
from hastack.deploy.reads import rabbit_cluster
from hastack.deploy.systemd import ensure_running, unit_states
from hastack.facts import RabbitCluster, file_state
from hastack.facts.rabbitmq import cluster_file, grow_queues, stopped_vhosts, users
from hastack.plan.steps import Step
from hastack.topology.model import Node

DEPARTED_RUNNING = "RABBIT-DEPARTED-RUNNING"


class RabbitMQStage:
    name = "rabbitmq"

    def applies(self, d: Deploy) -> bool:
        return bool(d.topo.brokers)

    async def run(self, d: Deploy) -> None:
        ctls = d.topo.brokers
        # First start: see the module's docstring. Later runs: a changed config restarts one broker at a time.
        for batch in await self.start_order(d):
            await d.each(batch, lambda n: self.start(d, n))
        anchor = await self.forget_departed(d)
        await d.rolling(ctls, lambda n: self.restart_if_changed(d, n))
        await d.rolling([n for n in ctls if n.name != anchor.name], lambda n: self.join(d, n, anchor))
        await self.import_definitions(d, anchor)
        await d.each(ctls, lambda n: self.grow(d, n))
        await self.gate(d)
        await self.watches(d)

    async def preview(self, d: Deploy) -> list[Step]:
        ctls = d.topo.brokers
        out: list[Step] = []
        order = await maybe(self.start_order(d))
        batches = order if order is not None else [ctls]
        for i, batch in enumerate(batches):
            how = f" (start batch {i + 1} of {len(batches)}: {', '.join(n.name for n in batch)})"
            for n in batch:
                out += await unit_steps(d, self.name, n.name, [rabbitmq.UNIT], how=how, restarts=False)
        hosts = [n.name for n in ctls]
        answers = await asyncio.gather(*(maybe(rabbit_cluster(d, h)) for h in hosts))
        # The run reads the views after the start batches; a broker that does not answer now comes
        # back in the cluster its database names (none: a new broker), which stands in for its view.
        views: list[RabbitCluster] = []
        known: dict[str, bool] = {}
        for n, v in zip(ctls, answers, strict=True):
            if v is not None and v.available:
                views.append(v)
                known[n.name] = True
                continue
            stored, known[n.name] = await self.stored_cluster(d, n)
            views.append(RabbitCluster(False, disk_nodes=stored or (), error="not answering"))
        host, view = anchor_of(hosts, views)
        departed = departed_brokers(view, {rabbitmq.nodename(n) for n in ctls})
        if why := still_running(view, departed):
            return [*out, Step(self.name, host, "refuse", f"forget brokers the topology left out: {why}",
                               DEPARTED_RUNNING)]
        later = "" if view.available else " (if it is down once the brokers run; deploy stops if it runs)"
        out += [Step(self.name, host, "change", f"forget {m} (forget_cluster_node: out of the cluster and its "
                                                f"quorum queues){later}") for m in departed]
        for n in ctls:
            out += await unit_steps(d, self.name, n.name, [rabbitmq.UNIT], starts=False,
                                    how=", one broker at a time, then await_startup")
        anchor = rabbitmq.nodename(d.topo.node(host))
        for n, v in zip(ctls, views, strict=True):
            if n.name == host or anchor in v.members:
                continue
            # A new broker (no database) finds the cluster itself at its first boot (classic peer
            # discovery): the stage's join is then only the fallback for one that formed its own.
            if known[n.name] and not v.available and not v.members:
                out.append(Step(self.name, n.name, "check", f"joins {anchor}'s cluster at its first boot (peer "
                                                            "discovery); joined by hand if it formed its own"))
                continue
            cond = "" if known[n.name] else " if it is not a member already (neither it nor its database answered)"
            out.append(Step(self.name, n.name, "change", f"join {anchor}'s cluster (stop_app, reset, join_cluster, "
                                                         f"start_app){cond}"))
        if any(rabbitmq.DEFINITIONS in d.changed_paths.get(n.name, set()) for n in ctls):
            out.append(Step(self.name, host, "change", "import the changed definitions (users, vhosts, permissions, "
                                                       "policies)"))
        out.append(Step(self.name, "", "check", "every broker holds a replica of every quorum queue "
                                                "(rabbitmq-queues grow adds the missing ones)"))
        out.append(gate(self.name, "every broker running in one cluster, no partitions, no guest user"))
        first = ctls[0].name
        stopped = await maybe(d.fact(first, stopped_vhosts(), "list RabbitMQ vhosts and where they run"))
        if stopped is None:
            out.append(Step(self.name, first, "check", "every vhost running on every broker (restart_vhost where "
                                                       "one is stopped)"))
        out += [Step(self.name, first, "change", f"start vhost {vhost} on {node} (restart_vhost)")
                for node, vhost in stopped or []]
        out.append(gate(self.name, "every vhost running on every broker"))
        for n in rabbitmq.watch_nodes(d.topo):
            if rabbitmq.peer_watch(d.topo):
                out += await unit_steps(d, self.name, n.name, [rabbitmq.PEERS_UNIT])
                continue
            state = await maybe(unit_states(d, n.name, [rabbitmq.PEERS_UNIT]))
            if state is None or state[rabbitmq.PEERS_UNIT].active or state[rabbitmq.PEERS_UNIT].enabled:
                out.append(Step(self.name, n.name, "change", f"stop and disable {rabbitmq.PEERS_UNIT} (the tuning "
                                                             "turns it off)" + ("" if state else ", if it runs")))
        return out

    async def stored_cluster(self, d: Deploy, node: Node) -> tuple[tuple[str, ...] | None, bool]:
        """The members a stopped broker's database names (None: it has none), and whether it could
        be read."""
        try:
            return await d.fact(node.name, cluster_file(f"{rabbitmq.DATA_DIR}/{rabbitmq.nodename(node)}"),
                                "read the broker's cluster file"), True
        except StepFailed:
            return None, False

    async def watches(self, d: Deploy) -> None:
        """The watch on every broker and every host of the brokers' clients (`rabbitmq.watch_nodes`)."""
        await d.each(rabbitmq.watch_nodes(d.topo), lambda n: self.peer_watch(d, n))

    async def peer_watch(self, d: Deploy, node: Node) -> None:
        """The dead-peer watch started once the cluster is whole (it drops peers; a cluster still
        forming must not be disturbed), on the brokers and the hosts of their clients, or stopped and
        disabled where the tuning turned it off."""
        if rabbitmq.peer_watch(d.topo):
            await ensure_running(d, node.name, rabbitmq.PEERS_UNIT)
            return
        state = (await unit_states(d, node.name, [rabbitmq.PEERS_UNIT]))[rabbitmq.PEERS_UNIT]
        if state.active or state.enabled:
            await d.run(node.name, ["systemctl", "disable", "--now", "--quiet", rabbitmq.PEERS_UNIT],
                        f"stop {rabbitmq.PEERS_UNIT}")
            d.changed(node.name, f"stopped and disabled {rabbitmq.PEERS_UNIT} (the tuning turned it off)")

    async def forget_departed(self, d: Deploy) -> Node:
        """Brokers of the cluster that the topology no longer lists: forgotten when they are down,
        a stop with what to do when one still runs. Read from the broker that knows the largest
        cluster (the first such in topology order), which is returned: the anchor the others join.
        A broker that is new in this run knows only itself, and may well be first in the topology
        (a replaced first controller): joining the others to it would reset them and lose their
        queues."""
        hosts = [n.name for n in d.topo.brokers]
        views = await asyncio.gather(*(rabbit_cluster(d, h) for h in hosts))
        host, view = anchor_of(hosts, list(views))
        departed = departed_brokers(view, {rabbitmq.nodename(n) for n in d.topo.brokers})
        if why := still_running(view, departed):
            raise StepFailed(host, "forget brokers the topology left out", why, code=DEPARTED_RUNNING)
        for member in departed:
            await d.run(host, ["rabbitmqctl", "-q", "forget_cluster_node", member], f"forget {member}", timeout=180)
            d.changed(host, f"removed {member} from the RabbitMQ cluster and from its quorum queues")
        return d.topo.node(host)

    async def start_order(self, d: Deploy) -> list[list[Node]]:
        """The brokers in the batches they start in: those with a database together, then the new
        ones together; when every broker is new, the first alone, then the rest."""
        ctls = d.topo.brokers
        dirs = {n.name: f"{rabbitmq.DATA_DIR}/{rabbitmq.nodename(n)}" for n in ctls}
        states = await asyncio.gather(*(d.fact(n.name, file_state([dirs[n.name]]), "look for the broker's database")
                                        for n in ctls))
        return start_batches(ctls, [n for n, st in zip(ctls, states, strict=True) if not st[dirs[n.name]].exists])

    async def import_definitions(self, d: Deploy, anchor: Node) -> None:
        """A definitions file this run changed, imported on one broker (users, vhosts, permissions
        and policies are cluster-wide): a new user, vhost or policy without a broker restart. Each
        broker also loads the file at its next boot."""
        if not any(rabbitmq.DEFINITIONS in d.changed_paths.get(n.name, set()) for n in d.topo.brokers):
            return
        await d.run(anchor.name, ["rabbitmqctl", "-q", "import_definitions", rabbitmq.DEFINITIONS],
                    "import the RabbitMQ definitions", timeout=120)
        d.changed(anchor.name, "imported the changed RabbitMQ definitions (users, vhosts, permissions, policies)")

    async def grow(self, d: Deploy, node: Node) -> None:
        """A replica of every quorum queue on this broker (those it lacks: a queue declared while it
        was away, or every queue when it just joined)."""
        grown = await d.fact(node.name, grow_queues(rabbitmq.nodename(node)), "add this broker to every quorum queue")
        if grown.failed:
            raise StepFailed(node.name, "add this broker to every quorum queue",
                             "; ".join(f"{q}: {why}" for q, why in grown.failed[:10]), code="RABBIT-QUEUE-GROW-FAILED")
        if grown.added:
            d.changed(node.name, f"added a replica of {len(grown.added)} quorum queue(s) on {rabbitmq.nodename(node)}")

    async def start(self, d: Deploy, node: Node) -> None:
        await ensure_running(d, node.name, rabbitmq.UNIT, restart=False)

    async def restart_if_changed(self, d: Deploy, node: Node) -> None:
        if await ensure_running(d, node.name, rabbitmq.UNIT):
            await self.await_startup(d, node.name)

    async def await_startup(self, d: Deploy, host: str) -> None:
        await d.run(host, ["rabbitmqctl", "-q", "await_startup", "--timeout", "120"], "wait for the broker",
                    timeout=150)

    async def join(self, d: Deploy, node: Node, anchor: Node) -> None:
        """A broker that formed a cluster of its own (it booted alone once, or it is new) joins the
        anchor's cluster (see forget_departed)."""
        first = rabbitmq.nodename(anchor)
        status = await rabbit_cluster(d, node.name)
        if not status.available:
            await self.await_startup(d, node.name)
            status = await rabbit_cluster(d, node.name)
        if first in status.members:
            return
        steps = [["stop_app"], ["reset"], ["join_cluster", first], ["start_app"]]
        for argv in steps:
            await d.run(node.name, ["rabbitmqctl", "-q", *argv], f"rabbitmqctl {' '.join(argv)}", timeout=120)
        d.changed(node.name, f"joined RabbitMQ cluster of {first}")

    async def gate(self, d: Deploy) -> None:
        want = sorted(rabbitmq.nodename(n) for n in d.topo.brokers)
        host = d.topo.brokers[0].name

        async def probe() -> tuple[bool, object]:
            s = await rabbit_cluster(d, host)
            running = sorted(s.running_nodes)
            return running == want and not s.partitioned, f"running={running} partitions={s.partitions}"

        await d.wait(host, "gate: RabbitMQ cluster", probe,
                     what="every broker running in one cluster, no partitions", timeout=180, interval=1)
        if "guest" in await d.fact(host, users(), "list RabbitMQ users"):
            raise StepFailed(host, "gate: no guest user", "the default 'guest' account exists",
                             code="RABBIT-GUEST-EXISTS")
        await self.vhosts_everywhere(d, host)

    async def vhosts_everywhere(self, d: Deploy, host: str) -> None:
        """Every vhost running on every broker, started where it is not.

        Each broker imports the definitions file at boot. When the brokers of a new cluster boot
        together, a vhost that one of them adds while another is still joining can stay stopped on
        that other one: its clients get "vhost 'nova' is down" there, and nova-conductor exits at
        start (seen twice in the lab on a fresh deploy, 2026-11-27). `restart_vhost` on that broker
        starts it; the gate then waits for every vhost to run everywhere."""

        async def stopped() -> list[tuple[str, str]]:
            return await d.fact(host, stopped_vhosts(), "list RabbitMQ vhosts and where they run")

        down = await stopped()
        if not down:
            return
        for node, vhost in down:
            await d.run(host, ["rabbitmqctl", "-q", "--node", node, "restart_vhost", "--vhost", vhost],
                        f"start vhost {vhost} on {node}", timeout=120)
            d.changed(host, f"started RabbitMQ vhost {vhost} on {node} (it was stopped there)")

        async def probe() -> tuple[bool, object]:
            left = await stopped()
            return not left, f"stopped: {left}"

        await d.wait(host, "gate: RabbitMQ vhosts", probe,
                     what="every vhost running on every broker", timeout=60, interval=1)


def start_batches(ctls: list[Node], new: list[Node]) -> list[list[Node]]:
    """Brokers with a database together, then the new ones together; all new: the first alone."""
    old = [n for n in ctls if n not in new]
    batches = [old, new] if old else [new[:1], new[1:]]
    return [b for b in batches if b]


def anchor_of(hosts: list[str], views: list[RabbitCluster]) -> tuple[str, RabbitCluster]:
    """The broker that knows the largest cluster (the first such in topology order) and its view."""
    return max(zip(hosts, views, strict=True), key=lambda hv: len(hv[1].members))


def still_running(view: RabbitCluster, departed: list[str]) -> str:
    """Why departed brokers cannot be forgotten yet ('' when none still runs)."""
    alive = [m for m in departed if m in view.running_nodes]
    if not alive:
        return ""
    return (f"{', '.join(alive)} still run(s) in the RabbitMQ cluster but the topology no longer lists them: stop "
            "RabbitMQ there (`systemctl stop rabbitmq-server`) or power the host off, then deploy again; or put "
            "the node back in the topology (`hastack retire NODE` with it does all of this cleanly)")


def departed_brokers(view: RabbitCluster, want: set[str]) -> list[str]:
    """Members of the cluster the topology no longer lists."""
    return [m for m in view.members if m not in want]
