"""Placement API on every controller (uWSGI, unit `placement-api`, port 8778). Stateless apart
from its database, so active/active needs nothing beyond the VIP URLs."""

from __future__ import annotations

from hastack.components import openstack as os_
from hastack.components.base import Ctx, File
from hastack.topology.model import Node, Topology

CONF = "/etc/placement/placement.conf"
PORT = 8778
UNIT = "placement-api"

UWSGI = os_.Uwsgi(
    unit=UNIT, init_name="placement-api", ini="/etc/placement/placement-api-uwsgi.ini", port=PORT,
    lines=os_.debian_uwsgi(
        "placement-api", "placement", ("wsgi-file", "/usr/bin/placement-api"),
        "/var/log/placement/placement-api.log",
        extra=(("socket-timeout", "10"), ("http-auto-chunked", "true"), ("http-chunked-input", "true"),
               ("http-raw-body", "true"), ("chmod-socket", "666"), ("add-header", "Connection: close"),
               ("exit-on-reload", "true"), ("wsgi-manage-chunked-input", "true"))),
)


def conf(ctx: Ctx) -> os_.Sections:
    return os_.merge(
        {"api": {"auth_strategy": "keystone"}},
        # Placement's WSGI app has no HTTPProxyToWSGI (nor the option): its version document links
        # relatively, so it needs no X-Forwarded-Proto.
        os_.keystone_authtoken(ctx, "placement", proxied=False),
        os_.database(ctx, "placement", "placement", section="placement_database"),
    )


class Placement:
    name = "placement"

    def applies(self, topo: Topology, node: Node) -> bool:
        return topo.runs("placement") and node.has("controller")

    def packages(self, topo: Topology, node: Node) -> list[str]:
        return ["placement-api", "python3-osc-placement"]

    def units(self, topo: Topology, node: Node) -> list[str]:
        return [UNIT]

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        return [
            os_.config_file(CONF, conf(ctx), "placement", (UNIT,)),
            *os_.uwsgi_files(UWSGI, node, ctx.topo.openstack.api_workers),
        ]


COMPONENT = Placement()
