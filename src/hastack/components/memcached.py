"""memcached on every controller, bound to the node's own address.

Not clustered: clients (oslo.cache, keystonemiddleware) hash keys over the list of every
controller's memcached, so losing one loses a slice of cache, never correctness. Binding the node
address (not 0.0.0.0) keeps it off the VIP and off other networks.
"""

from __future__ import annotations

from hastack.components.base import Ctx, File, template
from hastack.topology.model import Node, Topology

CONF = "/etc/memcached.conf"
PORT = 11211
MEMORY_MB = 256
MAX_CONNECTIONS = 4096
UNIT = "memcached"


def servers(topo: Topology) -> list[str]:
    """`host:port` of every memcached, for the services' `memcache_servers` options."""
    return [f"{n.address}:{PORT}" for n in topo.controllers]


class Memcached:
    name = "memcached"

    def applies(self, topo: Topology, node: Node) -> bool:
        return node.has("controller")

    def packages(self, topo: Topology, node: Node) -> list[str]:
        return ["memcached"]

    def units(self, topo: Topology, node: Node) -> list[str]:
        return [UNIT]

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        text = template("memcached/memcached.conf.j2", node=node, port=PORT, memory_mb=MEMORY_MB,
                        max_connections=MAX_CONNECTIONS)
        return [File(CONF, text, restarts=(UNIT,))]


COMPONENT = Memcached()
