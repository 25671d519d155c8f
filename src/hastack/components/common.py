"""Every node: /etc/hosts naming every node of the topology (RabbitMQ, corosync and the
nova/cinder postinst scripts resolve node names), so no node depends on outside DNS; and, with
TLS on the VIP, the cluster's CA certificate in the system trust store (the files stage runs
update-ca-certificates when it changes), so every service, curl and the `openstack` client on
any node trusts the VIP without options of their own."""

from __future__ import annotations

from hastack import pki
from hastack.components.base import Ctx, File
from hastack.topology.model import Node, Topology


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
        return [hosts, File(pki.CA_PATH, ctx.tls.ca_cert)] if ctx.topo.network.tls else [hosts]


COMPONENT = Common()
