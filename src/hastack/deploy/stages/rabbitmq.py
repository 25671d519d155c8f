"""Stage 3: RabbitMQ. Brokers start together (a lone broker waits for its peers, then gives up),
join one cluster, and load users and vhosts from the rendered definitions (no `guest`)."""

from __future__ import annotations

from hastack.components import rabbitmq
from hastack.deploy.engine import Deploy, StepFailed
from hastack.deploy.reads import rabbit_cluster
from hastack.deploy.systemd import ensure_running
from hastack.facts.rabbitmq import stopped_vhosts, users
from hastack.topology.model import Node


class RabbitMQStage:
    name = "rabbitmq"

    def applies(self, d: Deploy) -> bool:
        return bool(d.topo.brokers)

    async def run(self, d: Deploy) -> None:
        ctls = d.topo.brokers
        # First start: together. Later runs: a changed config restarts one broker at a time.
        await d.each(ctls, lambda n: self.start(d, n))
        await d.rolling(ctls, lambda n: self.restart_if_changed(d, n))
        await d.rolling(ctls[1:], lambda n: self.join(d, n))
        await self.gate(d)

    async def start(self, d: Deploy, node: Node) -> None:
        await ensure_running(d, node.name, rabbitmq.UNIT, restart=False)

    async def restart_if_changed(self, d: Deploy, node: Node) -> None:
        if await ensure_running(d, node.name, rabbitmq.UNIT):
            await self.await_startup(d, node.name)

    async def await_startup(self, d: Deploy, host: str) -> None:
        await d.run(host, ["rabbitmqctl", "-q", "await_startup", "--timeout", "120"], "wait for the broker",
                    timeout=150)

    async def join(self, d: Deploy, node: Node) -> None:
        """A broker that formed a cluster of its own (e.g. it booted alone once) joins the first one."""
        first = rabbitmq.nodename(d.topo.brokers[0])
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
            raise StepFailed(host, "gate: no guest user", "the default 'guest' account exists")
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

