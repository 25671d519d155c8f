"""The broker dead-peer watch (agents/rabbit_peers.py) on every node it runs on: the brokers, which
drop a peer whose host went silent, and every host of OpenStack services, whose connections to that
broker it cuts (README, "A dead broker dropped in seconds"). Its unit is started by the rabbitmq
stage once the cluster is whole."""

from __future__ import annotations

from pathlib import Path

from hastack.agents import rabbit_peers
from hastack.components import rabbitmq
from hastack.components.base import Ctx, File
from hastack.topology.model import Node, Topology


class RabbitWatch:
    name = "rabbit_watch"

    def applies(self, topo: Topology, node: Node) -> bool:
        return rabbitmq.runs_watch(topo, node)

    def packages(self, topo: Topology, node: Node) -> list[str]:
        return ["python3", "iproute2"]  # the program, and `ss -K` for the cut

    def units(self, topo: Topology, node: Node) -> list[str]:
        return []  # started by the rabbitmq stage after its gate, not with the node's other units

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        unit = (rabbitmq.PEERS_UNIT,)
        return [File(rabbitmq.PEERS_PROGRAM, Path(rabbit_peers.__file__).read_bytes(), mode=0o755, restarts=unit),
                File(rabbitmq.PEERS_UNIT_FILE, rabbitmq.peers_unit(ctx.topo, node), restarts=unit)]


COMPONENT = RabbitWatch()
