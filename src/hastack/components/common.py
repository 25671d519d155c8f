"""Every node: /etc/hosts naming every node of the topology (RabbitMQ, corosync and the
nova/cinder postinst scripts resolve node names), so no node depends on outside DNS; TCP keepalive
timing (TCP_SYSCTL, why below); and, with
TLS on the VIP, the cluster's CA certificate in the system trust store (the files stage runs
update-ca-certificates when it changes), so every service, curl and the `openstack` client on
any node trusts the VIP without options of their own."""

from __future__ import annotations

from hastack import pki
from hastack.components.base import Ctx, File
from hastack.topology.model import Node, Topology

TCP_SYSCTL = "/etc/sysctl.d/60-hastack-tcp.conf"
KEEPALIVE_TIME_S, KEEPALIVE_INTVL_S, KEEPALIVE_PROBES = 30, 5, 3
TCP_KEEPALIVE = f"""# managed by hastack
# A client connected through the VIP whose server end vanished (the VIP moved away from the node that
# held its HAProxy session) hears nothing more: no FIN or RST reaches it, and a client waiting for an
# answer sends nothing that could draw one. PyMySQL turns TCP keepalive on but leaves its timing to
# these, and the kernel's default first probe comes after 2 hours. Seen on the seed lab (campaign
# seed 10, cycle 16, 2026-12-05): the VIP moved back 22 s after a heal, and nova-scheduler on ctl-2 sat
# for good in a read on a connection whose HAProxy end was gone (no log line, its service row down).
# A probe after {KEEPALIVE_TIME_S} s idle reaches the VIP's new holder, which answers RST: the client
# reconnects, {KEEPALIVE_TIME_S}-{KEEPALIVE_TIME_S + KEEPALIVE_INTVL_S * KEEPALIVE_PROBES} s after its last traffic.
net.ipv4.tcp_keepalive_time = {KEEPALIVE_TIME_S}
net.ipv4.tcp_keepalive_intvl = {KEEPALIVE_INTVL_S}
net.ipv4.tcp_keepalive_probes = {KEEPALIVE_PROBES}
"""


class Common:
    name = "common"

    def applies(self, topo: Topology, node: Node) -> bool:
        return True

    def packages(self, topo: Topology, node: Node) -> list[str]:
        return ["ca-certificates"] if topo.network.tls else []

    def units(self, topo: Topology, node: Node) -> list[str]:
        return []

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
        lines += [f"{n.address} {ctx.topo.fqdn(n)} {n.name}" for n in ctx.topo.nodes]
        lines.append(f"{ctx.vip} vip.{ctx.topo.domain} vip")
        hosts = File("/etc/hosts", "# managed by hastack\n" + "\n".join(lines) + "\n")
        tcp = File(TCP_SYSCTL, TCP_KEEPALIVE)  # the files stage applies a changed sysctl.d file at once
        return [hosts, tcp, File(pki.CA_PATH, ctx.tls.ca_cert)] if ctx.topo.network.tls else [hosts, tcp]


COMPONENT = Common()
