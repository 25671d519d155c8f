"""Neutron: API + RPC server on every controller, agents on the network and compute nodes.

Why it looks like this:
- Debian's `neutron-server` is an empty package: controllers run `neutron-api` (uWSGI, :9696, init
  name `neutron-server`, hence /etc/default/neutron-server) and `neutron-rpc-server`, both reading
  neutron.conf + ml2_conf.ini.
- Network nodes run the L3, DHCP and metadata agents ONLY under Pacemaker (`cluster_units()`): they
  are installed but never enabled as systemd units, and deploy must disable the units the packages'
  postinst enabled. Their config changes need a restart of the Pacemaker group, not of a unit, so
  their files name no unit to restart.
- One agent identity for both network nodes: `[DEFAULT] host = openstack.agent_host` in neutron.conf
  on the network nodes, the file every Neutron process there reads. Routers and networks are
  scheduled to that host, so they follow the Pacemaker group on failover without rescheduling.
  The L2 agent on a network node must carry the same identity: ML2 binds the router and DHCP ports
  to host `agent_host` and only binds a port to a host where an L2 agent of the mechanism's type
  reports alive (neutron/plugins/ml2/drivers/mech_agent.py, bind_port: "no agent of type ...
  registered on host"); with the real hostname every qr-/qg-/tap port would end `binding_failed`.
  Linuxbridge agents on both network nodes may report under one name at the same time: each wires
  only the taps that exist on its own node, and without l2population the server keeps no per-host
  tunnel endpoint that the two could fight over. That is also why l2population stays off: it
  publishes one tunnel address per host, and the shared host has two. (An Open vSwitch agent does
  register a tunnel endpoint per host, so with `l2_agent: openvswitch` the network nodes' OVS agent
  joins the Pacemaker group too; see `cluster_units()`.) Computes' L2 agents keep their real names:
  nova binds instance ports to the compute's hostname.
- A clean move of the group (standby, maintenance) must not leave routers behind: the group's
  first member is `hastack-neutron-cleanup.service`, whose stop removes the qrouter/qdhcp
  namespaces once the agents are down (see `cleanup_unit()`).
- Automatic DHCP/L3 rescheduling is off: there is one logical agent, nothing to move networks or
  routers to; Pacemaker moves the agent instead. One DHCP agent per network for the same reason.
- VXLAN tenant networks; `flat` is enabled for a physical network named `external`, which needs a
  `physical_interface_mappings` the topology does not model yet (the lab uses a VXLAN external net).
- Linuxbridge is experimental in Zed: `[experimental] linuxbridge = true` on servers and agents.
"""

from __future__ import annotations

from hastack import pki
from hastack.components import nova
from hastack.components import openstack as os_
from hastack.components.base import Ctx, File
from hastack.topology.model import Node, Topology

CONF = "/etc/neutron/neutron.conf"
ML2 = "/etc/neutron/plugins/ml2/ml2_conf.ini"
LINUXBRIDGE = "/etc/neutron/plugins/ml2/linuxbridge_agent.ini"
OPENVSWITCH = "/etc/neutron/plugins/ml2/openvswitch_agent.ini"
L3 = "/etc/neutron/l3_agent.ini"
DHCP = "/etc/neutron/dhcp_agent.ini"
METADATA = "/etc/neutron/metadata_agent.ini"
PORT = 9696
SERVER_UNITS = ("neutron-api", "neutron-rpc-server")
ROOT_HELPER = "sudo neutron-rootwrap /etc/neutron/rootwrap.conf"

# neutron-api monkey-patches with eventlet: one thread per uWSGI process, like every API here (see
# openstack.debian_uwsgi; the lab's log showed "greenlet.error: cannot switch to a different thread").
API = os_.Uwsgi(
    unit="neutron-api", init_name="neutron-server", ini="/etc/neutron/neutron-api-uwsgi.ini", port=PORT,
    lines=os_.debian_uwsgi("neutron-api", "neutron", ("wsgi-file", "/usr/bin/neutron-api"),
                           "/var/log/neutron/neutron-api.log",
                           extra=(("add-header", "Connection: close"),
                                  ("paste", "config:/etc/neutron/api-paste.ini"))),
)


def l2_unit(topo: Topology) -> str:
    return f"neutron-{topo.openstack.l2_agent}-agent"


CLEANUP_UNIT = "hastack-neutron-cleanup.service"
CLEANUP = f"/etc/systemd/system/{CLEANUP_UNIT}"


def cluster_units(topo: Topology) -> list[str]:
    """What Pacemaker runs on the network nodes, in start order: the namespace cleanup first (so it
    stops last), then, with Open vSwitch, its L2 agent, then metadata (the DHCP and L3 agents'
    metadata proxies forward to it), DHCP and L3."""
    out = [CLEANUP_UNIT, *([l2_unit(topo)] if topo.openstack.l2_agent == "openvswitch" else [])]
    return out + ["neutron-metadata-agent", "neutron-dhcp-agent", "neutron-l3-agent"]


def cluster_agent_files(topo: Topology) -> dict[str, tuple[str, ...]]:
    """The files each agent Pacemaker runs reads when it starts (unit -> paths): a change of any of
    them needs a restart through Pacemaker (systemd does not own these units, see `units`)."""
    out: dict[str, tuple[str, ...]] = {"neutron-metadata-agent": (CONF, METADATA), "neutron-dhcp-agent": (CONF, DHCP),
           "neutron-l3-agent": (CONF, L3)}
    if topo.openstack.l2_agent == "openvswitch":
        out[l2_unit(topo)] = (CONF, OPENVSWITCH)
    return out


def cleanup_unit() -> str:
    """Stopping the L3 and DHCP agents leaves their namespaces behind on purpose (traffic survives an
    agent restart): qrouter-* keeps the router addresses and NAT, qdhcp-* its ports. After a clean
    move of the group the old node would keep answering for every router next to the new one. This
    unit, stopped after the agents, removes those namespaces with their processes and devices."""
    files = " ".join(f"--config-file={p}" for p in (CONF, DHCP, L3))
    return ("# managed by hastack: run by Pacemaker as the first member of the network agents' group\n"
            "[Unit]\nDescription=Remove Neutron router and DHCP namespaces when the agents leave this node\n"
            "After=network-online.target\n\n"
            "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n"
            f"ExecStop=/usr/bin/neutron-netns-cleanup {files} --force\nTimeoutStopSec=60\n")


def _check_roles(node: Node) -> None:
    if node.has("network") and node.has("compute"):
        raise ValueError(f"{node.name}: a network node cannot also be a compute node: its L2 agent "
                         "presents the shared agent identity, so instance ports bound to its own hostname "
                         "would not bind")


# -- neutron.conf --------------------------------------------------------------------------------------
def experimental(topo: Topology) -> os_.Sections:
    return {"experimental": {"linuxbridge": True}} if topo.openstack.l2_agent == "linuxbridge" else {}


def server_conf(ctx: Ctx) -> os_.Sections:
    topo = ctx.topo
    workers = topo.openstack.api_workers
    with_nova = topo.runs("nova")
    return os_.merge(
        {"DEFAULT": {
            "core_plugin": "ml2",
            "service_plugins": "router",
            "auth_strategy": "keystone",
            "rpc_workers": workers,
            "rpc_state_report_workers": workers,
            "dhcp_agents_per_network": 1,
            "allow_automatic_dhcp_failover": False,
            "allow_automatic_l3agent_failover": False,
            "l3_ha": False,
            "notify_nova_on_port_status_changes": with_nova,
            "notify_nova_on_port_data_changes": with_nova,
        }},
        os_.messaging(ctx, "neutron"),
        os_.database(ctx, "neutron", "neutron"),
        os_.keystone_authtoken(ctx, "neutron"),
        {"nova": os_.client_section(ctx, "neutron", endpoint_type="internal")} if with_nova else {},
        os_.lock_path("neutron"),
        experimental(topo),
    )


AGENT_REPORT_INTERVAL_S = 10
"""How often every agent reports its state (Neutron's default: 30 s; Nova's compute: 10 s). An agent
whose broker died cannot report until the surviving brokers drop the dead one (Erlang's nodedown,
0.75-1.25 x net_ticktime), long enough for the server to call it dead (agent_down_time, 75 s) and to
refuse to bind ports on its host: `server create` then ends in ERROR (PortBindingFailed). It is
alive again at its first report after nodedown, so the interval is how long the cloud refuses
builds past that moment: 10 s instead of up to 30 s (measured on the lab: the DHCP and metadata
agents dead 61-66 s after the VIP controller's power-off, in two runs of three)."""


def agent_conf(ctx: Ctx, node: Node) -> os_.Sections:
    host = {"DEFAULT": {"host": ctx.topo.openstack.agent_host}} if node.has("network") else {}
    return os_.merge(
        host,
        os_.messaging(ctx, "neutron"),
        {"agent": {"root_helper": ROOT_HELPER, "report_interval": AGENT_REPORT_INTERVAL_S}},
        os_.lock_path("neutron"),
        experimental(ctx.topo),
    )


def conf(ctx: Ctx, node: Node) -> os_.Sections:
    """A controller that is also a network node gets both halves (the server then shares the
    agent identity too, which it does not mind)."""
    parts: list[os_.Sections] = []
    if node.has("controller"):
        parts.append(server_conf(ctx))
    if node.has("network") or node.has("compute"):
        parts.append(agent_conf(ctx, node))
    return os_.merge(*parts)


# -- plugin and agent files ------------------------------------------------------------------------------
def ml2_conf(topo: Topology) -> os_.Sections:
    return {
        "ml2": {"type_drivers": "flat,vxlan", "tenant_network_types": "vxlan",
                "mechanism_drivers": topo.openstack.l2_agent, "extension_drivers": "port_security"},
        "ml2_type_flat": {"flat_networks": "external"},
        "ml2_type_vxlan": {"vni_ranges": "1:1000"},
        "securitygroup": {"enable_ipset": True},
    }


def l2_conf(topo: Topology, node: Node) -> tuple[str, os_.Sections]:
    if topo.openstack.l2_agent == "linuxbridge":
        return LINUXBRIDGE, {
            "vxlan": {"enable_vxlan": True, "local_ip": str(node.address), "l2_population": False},
            "securitygroup": {"enable_security_group": True, "firewall_driver": "iptables"},
        }
    return OPENVSWITCH, {
        "ovs": {"local_ip": str(node.address)},
        "agent": {"tunnel_types": "vxlan", "l2_population": False},
        "securitygroup": {"enable_security_group": True, "firewall_driver": "iptables_hybrid"},
    }


def metadata_conf(ctx: Ctx) -> os_.Sections:
    """The metadata agent reaches nova's metadata API through the VIP (over TLS, trusting the
    cluster's CA, unless the topology turned TLS off)."""
    tls = {"auth_ca_cert": pki.CA_PATH} if ctx.topo.network.tls else {}
    return {"DEFAULT": {
        "nova_metadata_host": ctx.vip,
        "nova_metadata_port": nova.METADATA_PORT,
        "nova_metadata_protocol": ctx.topo.api_scheme,
        **tls,
        "metadata_proxy_shared_secret": ctx.secrets.password(os_.METADATA_SECRET),
        "metadata_workers": ctx.topo.openstack.api_workers,
    }}


def network_files(ctx: Ctx) -> list[File]:
    topo = ctx.topo
    driver = {"interface_driver": topo.openstack.l2_agent}
    dhcp = {"DEFAULT": {**driver, "enable_isolated_metadata": topo.runs("nova")}}
    out = [
        os_.config_file(L3, {"DEFAULT": driver}, "neutron", (), secret=False),
        os_.config_file(DHCP, dhcp, "neutron", (), secret=False),
    ]
    # Rendered even without nova: Pacemaker runs the metadata agent in the group either way.
    out.append(os_.config_file(METADATA, metadata_conf(ctx), "neutron", ()))
    out.append(File(CLEANUP, cleanup_unit()))
    return out


class Neutron:
    name = "neutron"

    def applies(self, topo: Topology, node: Node) -> bool:
        return topo.runs("neutron") and any(node.has(r) for r in ("controller", "network", "compute"))

    def packages(self, topo: Topology, node: Node) -> list[str]:
        out = ["neutron-api", "neutron-rpc-server"] if node.has("controller") else []
        if node.has("network") or node.has("compute"):
            out.append(l2_unit(topo))
            out += ["openvswitch-switch"] if topo.openstack.l2_agent == "openvswitch" else []
        if node.has("network"):
            # net-tools: neutron-netns-cleanup (the cleanup unit) finds a namespace's listeners with
            # netstat, and no neutron package depends on it.
            out += ["neutron-l3-agent", "neutron-dhcp-agent", "neutron-metadata-agent", "iputils-arping",
                    "net-tools"]
        return out

    def units(self, topo: Topology, node: Node) -> list[str]:
        """Systemd units to enable: never the agents Pacemaker runs."""
        out = list(SERVER_UNITS) if node.has("controller") else []
        if node.has("network") or node.has("compute"):
            out += ["openvswitch-switch"] if topo.openstack.l2_agent == "openvswitch" else []
            out += [l2_unit(topo)] if l2_unit(topo) not in self._clustered(topo, node) else []
        return out

    @staticmethod
    def _clustered(topo: Topology, node: Node) -> list[str]:
        return cluster_units(topo) if node.has("network") else []

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        _check_roles(node)
        topo = ctx.topo
        # openvswitch-switch is the switch, not a reader of Neutron's files.
        units = tuple(u for u in self.units(topo, node) if u != "openvswitch-switch")
        out = [os_.config_file(CONF, conf(ctx, node), "neutron", units),
               os_.config_file(ML2, ml2_conf(topo), "neutron", units, secret=False)]
        if node.has("controller"):
            out += os_.uwsgi_files(API, node, topo.openstack.api_workers)
        if node.has("network") or node.has("compute"):
            path, l2 = l2_conf(topo, node)
            l2_restarts = [u for u in units if u == l2_unit(topo)]
            out.append(os_.config_file(path, l2, "neutron", l2_restarts, secret=False))
        if node.has("network"):
            out += network_files(ctx)
        return out + os_.daemon_dropins(units, API)


COMPONENT = Neutron()
