"""Nova: API, metadata API, conductor and scheduler on every controller; nova-compute on computes.

Why it looks like this:
- The APIs (nova-api :8774, nova-api-metadata :8775) are Debian uWSGI units bound to the node's
  own address; conductor and scheduler are RPC consumers on the `nova` vhost, which the computes
  share (they must: they are one RPC system). Worker counts are `openstack.api_workers`.
- Computes get no database credentials at all (nova-compute goes through the conductor).
- Each outbound client section ([neutron], [placement], [service_user]) uses nova's own user.
- The metadata API trusts requests signed with `metadata/secret` by the neutron metadata agent.
- VNC consoles are off: Debian 12 has no nova-novncproxy package, so a console URL would lead nowhere.
- /etc/nova/nova-compute.conf (read after nova.conf by Debian's nova-compute unit, so it wins)
  picks the driver: fake.FakeDriver in the lab (installed with nova-compute-ironic, the only
  variant that pulls no hypervisor), libvirt with KVM otherwise.
"""

from __future__ import annotations

from hastack.components import openstack as os_
from hastack.components.base import Ctx, File
from hastack.topology.model import Node, Topology

CONF = "/etc/nova/nova.conf"
COMPUTE_CONF = "/etc/nova/nova-compute.conf"
API_PORT = 8774
METADATA_PORT = 8775
CONTROLLER_UNITS = ("nova-api", "nova-api-metadata", "nova-conductor", "nova-scheduler")
COMPUTE_UNIT = "nova-compute"

API = os_.Uwsgi(
    unit="nova-api", init_name="nova-api", ini="/etc/nova/nova-api-uwsgi.ini", port=API_PORT,
    lines=os_.debian_uwsgi("nova-api", "nova", ("wsgi-file", "/usr/bin/nova-api-wsgi"),
                           "/var/log/nova/nova-api.log"),
)
METADATA = os_.Uwsgi(
    unit="nova-api-metadata", init_name="nova-api-metadata", ini="/etc/nova/nova-api-metadata-uwsgi.ini",
    port=METADATA_PORT,
    lines=os_.debian_uwsgi("nova-api-metadata", "nova", ("wsgi-file", "/usr/bin/nova-metadata-wsgi"),
                           "/var/log/nova/nova-api-metadata.log"),
)


def common(ctx: Ctx, node: Node) -> os_.Sections:
    """What controllers and computes share: identity of the node, RPC, the other services."""
    topo = ctx.topo
    cinder = ({"cinder": {"os_region_name": topo.openstack.region,
                          "catalog_info": "volumev3:cinderv3:internalURL"}} if topo.runs("cinder") else {})
    return os_.merge(
        {"DEFAULT": {"my_ip": str(node.address), "state_path": "/var/lib/nova"}},
        os_.messaging(ctx, "nova"),
        cinder,
        {"glance": {"region_name": topo.openstack.region, "valid_interfaces": "internal"}},
        {"neutron": os_.client_section(ctx, "nova", valid_interfaces="internal")},
        {"placement": os_.client_section(ctx, "nova", valid_interfaces="internal")},
        os_.service_user(ctx, "nova"),
        os_.lock_path("nova"),
        {"vnc": {"enabled": False}},
    )


def controller_conf(ctx: Ctx, node: Node) -> os_.Sections:
    workers = ctx.topo.openstack.api_workers
    return os_.merge(
        common(ctx, node),
        os_.database(ctx, "nova", "nova_api", section="api_database"),
        os_.database(ctx, "nova", "nova"),
        os_.oslo_cache(ctx),
        {"conductor": {"workers": workers}},
        {"scheduler": {"workers": workers}},
        os_.keystone_authtoken(ctx, "nova"),
        {"neutron": {"service_metadata_proxy": True,
                     "metadata_proxy_shared_secret": ctx.secrets.password(os_.METADATA_SECRET)}},
    )


def compute_conf(topo: Topology) -> os_.Sections:
    if topo.openstack.compute_driver == "fake":
        return {"DEFAULT": {"compute_driver": "fake.FakeDriver"}}
    return {"DEFAULT": {"compute_driver": "libvirt.LibvirtDriver"}, "libvirt": {"virt_type": "kvm"}}


class Nova:
    name = "nova"

    def applies(self, topo: Topology, node: Node) -> bool:
        return topo.runs("nova") and (node.has("controller") or node.has("compute"))

    def packages(self, topo: Topology, node: Node) -> list[str]:
        out = ["nova-api", "nova-conductor", "nova-scheduler"] if node.has("controller") else []
        if node.has("compute"):
            driver = "nova-compute-ironic" if topo.openstack.compute_driver == "fake" else "nova-compute-kvm"
            out += ["nova-compute", driver]
        return out

    def units(self, topo: Topology, node: Node) -> list[str]:
        out = list(CONTROLLER_UNITS) if node.has("controller") else []
        return out + ([COMPUTE_UNIT] if node.has("compute") else [])

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        units = self.units(ctx.topo, node)
        if node.has("controller"):
            workers = ctx.topo.openstack.api_workers
            out = [os_.config_file(CONF, controller_conf(ctx, node), "nova", units),
                   *os_.uwsgi_files(API, node, workers), *os_.uwsgi_files(METADATA, node, workers)]
        else:
            out = [os_.config_file(CONF, common(ctx, node), "nova", units)]
        if node.has("compute"):
            out.append(os_.config_file(COMPUTE_CONF, compute_conf(ctx.topo), "nova", (COMPUTE_UNIT,),
                                       secret=False))
        return out + os_.daemon_dropins(units, API, METADATA)


COMPONENT = Nova()
