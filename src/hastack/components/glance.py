"""Glance API on every controller (Debian 12 runs it with its own eventlet server, not uWSGI:
the shipped glance-api-uwsgi.ini is unused, so the bind address is `bind_host`).

The image store is a local directory in the lab (`file` backend). With N controllers that is N
separate stores: an image uploaded through one controller is only on that controller, and a
download HAProxy sends to another fails. It is enough for the lab (the fake compute driver never
downloads images); a real deployment needs a shared backend (Ceph RBD, Swift, or the directory on
shared storage). `worker_self_reference_url` is the node's own URL on purpose: interoperable image
import stages data on the node that received it, and the other nodes proxy import calls there.
"""

from __future__ import annotations

from hastack.components import openstack as os_
from hastack.components.base import Ctx, File
from hastack.topology.model import Node, Topology

CONF = "/etc/glance/glance-api.conf"
PORT = 9292
UNIT = "glance-api"
IMAGES_DIR = "/var/lib/glance/images/"


def conf(ctx: Ctx, node: Node) -> os_.Sections:
    return os_.merge(
        {"DEFAULT": {
            "bind_host": str(node.address),
            "bind_port": PORT,
            "workers": ctx.topo.openstack.api_workers,
            "enabled_backends": "file:file",
            "worker_self_reference_url": f"http://{node.address}:{PORT}",
        }},
        os_.database(ctx, "glance", "glance"),
        {"glance_store": {"default_backend": "file"}},
        {"file": {"filesystem_store_datadir": IMAGES_DIR}},
        os_.keystone_authtoken(ctx, "glance"),
        {"paste_deploy": {"flavor": "keystone"}},
        os_.lock_path("glance"),
        os_.notifications(ctx),
    )


class Glance:
    name = "glance"

    def applies(self, topo: Topology, node: Node) -> bool:
        return topo.runs("glance") and node.has("controller")

    def packages(self, topo: Topology, node: Node) -> list[str]:
        return ["glance-api"]

    def units(self, topo: Topology, node: Node) -> list[str]:
        return [UNIT]

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        return [os_.config_file(CONF, conf(ctx, node), "glance", (UNIT,)), *os_.daemon_dropins((UNIT,))]


COMPONENT = Glance()
