"""garbd, the Galera arbitrator, on nodes with the 'arbitrator' role that are not controllers.

It adds the third vote when there are only two MariaDB nodes (the four-server layout), so a clean
split or the loss of one controller leaves a primary component. garbd keeps no data; it only needs
the group name, a peer list and the same evs timeouts as the MariaDB members (a member that judges
failures on a different clock evicts peers the others still count).

Debian's galera-arbitrator-4 runs `garb-systemd start`, which sources /etc/default/garb and reads
GALERA_NODES, GALERA_GROUP and GALERA_OPTIONS (there is no GARB_OPTIONS). Debian ships the same
unit twice, as garb.service and garbd.service; hastack uses `garbd` only (enabling both would start
two arbitrators).
"""

from __future__ import annotations

from hastack.components import galera
from hastack.components.base import Ctx, File, template
from hastack.topology.model import Node, Topology

DEFAULTS = "/etc/default/garb"
UNIT = "garbd"


def peers(topo: Topology, node: Node) -> list[str]:
    return [f"{n.address}:{galera.GALERA_PORT}" for n in galera.members(topo) if n.name != node.name]


def options(topo: Topology, node: Node) -> list[str]:
    return [f"gmcast.listen_addr=tcp://{node.address}:{galera.GALERA_PORT}",
            *galera.evs_options(topo.tuning.galera)]


class Garbd:
    name = "garbd"

    def applies(self, topo: Topology, node: Node) -> bool:
        return node in topo.garbd_nodes

    def packages(self, topo: Topology, node: Node) -> list[str]:
        return ["galera-arbitrator-4"]

    def units(self, topo: Topology, node: Node) -> list[str]:
        return [UNIT]

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        text = template("garbd/garb.j2", node=node, cluster=ctx.topo.name, peers=peers(ctx.topo, node),
                        options=options(ctx.topo, node))
        return [File(DEFAULTS, text, restarts=(UNIT,))]


COMPONENT = Garbd()
