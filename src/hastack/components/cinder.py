"""Cinder API and scheduler on every controller (no volume service: the lab has no backend).

`enabled_backends` is left unset, so nothing schedules volumes yet; a backend is a cinder-volume
(active/active needs a `[DEFAULT] cluster` name and a coordination backend, or one volume service
under Pacemaker) and is future work. Cinder calls Nova (volume events) with its own user and sends
service tokens along ([service_user]).
"""

from __future__ import annotations

from hastack.components import openstack as os_
from hastack.components.base import Ctx, File
from hastack.topology.model import Node, Topology

CONF = "/etc/cinder/cinder.conf"
PORT = 8776
UNITS = ("cinder-api", "cinder-scheduler")

API = os_.Uwsgi(
    unit="cinder-api", init_name="cinder-api", ini="/etc/cinder/cinder-api-uwsgi.ini", port=PORT,
    lines=os_.debian_uwsgi(
        "cinder-api", "cinder", ("wsgi-file", "/usr/bin/cinder-wsgi"), "/var/log/cinder/cinder-api.log",
        extra=(("socket-timeout", "10"), ("http-raw-body", "true"), ("chmod-socket", "666"),
               ("add-header", "Connection: close"), ("exit-on-reload", "true"),
               ("wsgi-manage-chunked-input", "true"))),
)


def conf(ctx: Ctx, node: Node) -> os_.Sections:
    nova = {"nova": os_.client_section(ctx, "cinder", interface="internal")} if ctx.topo.runs("nova") else {}
    return os_.merge(
        {"DEFAULT": {"my_ip": str(node.address), "auth_strategy": "keystone",
                     "state_path": "/var/lib/cinder"}},
        os_.messaging(ctx, "cinder"),
        os_.database(ctx, "cinder", "cinder"),
        os_.keystone_authtoken(ctx, "cinder"),
        nova,
        os_.lock_path("cinder"),
        os_.service_user(ctx, "cinder"),
    )


class Cinder:
    name = "cinder"

    def applies(self, topo: Topology, node: Node) -> bool:
        return topo.runs("cinder") and node.has("controller")

    def packages(self, topo: Topology, node: Node) -> list[str]:
        return list(UNITS)

    def units(self, topo: Topology, node: Node) -> list[str]:
        return list(UNITS)

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        return [os_.config_file(CONF, conf(ctx, node), "cinder", UNITS),
                *os_.uwsgi_files(API, node, ctx.topo.openstack.api_workers), *os_.daemon_dropins(UNITS, API)]


COMPONENT = Cinder()
