"""Read every host in parallel (one SSH connection, one command each) and the VIP from outside,
then assemble the answers into a ClusterState. Changes nothing anywhere.

Time is bounded: a host gets `ssh.connect_timeout` to accept the connection and the probe's own
budget (a few seconds) to answer; every host and the client checks run at the same time, so a
dead host costs the wait for that host only. `Collector` keeps its connections between rounds
(`--watch`), reconnecting the hosts that were lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hastack import pki
from hastack.components import haproxy, logins, pacemaker, rabbitmq
from hastack.facts import UnitState
from hastack.secrets import Secrets, SecretsFileError, secrets_path, state_dir
from hastack.status import client as client_mod
from hastack.status.bundle import budget, run_bundle
from hastack.status.client import ClientView, TokenCache
from hastack.status.model import (
    ClusterState,
    GaleraNode,
    GaleraView,
    HAProxyNode,
    HAProxyView,
    HostView,
    MemcachedNode,
    OpenStackView,
    PacemakerNode,
    PacemakerView,
    RabbitNode,
    RabbitView,
    UnitCheck,
    VipView,
)
from hastack.status.probes import Credentials, HostFacts, read_host, tasks_for, unit_names
from hastack.topology.model import Node, Topology
from hastack.transport.base import HostError, HostUnreachable, Transport
from hastack.transport.fleet import Unreachable

Connector = Callable[[Node], Awaitable[Transport]]
ClientCheck = Callable[[Topology, Credentials, TokenCache], Awaitable[ClientView]]
SLACK = 1.5


@dataclass(frozen=True)
class HostRead:
    view: HostView
    facts: HostFacts | None


def credentials(topo: Topology, topology_file: Path) -> Credentials:
    """The secrets status may use, read (never created) from the topology's secrets file."""
    path = secrets_path(topology_file, topo.name)
    try:
        secrets = Secrets.load(path)
    except (OSError, SecretsFileError):
        return Credentials()
    names = set(secrets.names())

    def get(name: str) -> str | None:
        return secrets.password(name) if name in names else None

    rabbit = get(rabbitmq.ADMIN_SECRET)
    probe = get(client_mod.PROBE_SECRET)
    return Credentials(rabbit=(rabbitmq.ADMIN_USER, rabbit) if rabbit else None,
                       db_probe=(client_mod.PROBE_USER, probe) if probe else None,
                       keystone_admin=get(client_mod.ADMIN_SECRET), ca_cert=pki.ca_cert(secrets),
                       rotating=tuple(logins.unfinished(secrets)))


async def default_client(topo: Topology, creds: Credentials, tokens: TokenCache) -> ClientView:
    return await client_mod.client_view(topo, creds.db_probe[1] if creds.db_probe else None, creds.keystone_admin,
                                        fetch=client_mod.trusting(creds.ca_cert), tokens=tokens)


class Collector:
    """One status session: connections kept across rounds, one round = one ClusterState."""

    def __init__(self, topo: Topology, topology_file: Path, *, creds: Credentials | None = None,
                 connector: Connector | None = None, client: ClientCheck = default_client):
        self.topo = topo
        self.topology_file = topology_file
        self.creds = creds if creds is not None else credentials(topo, topology_file)
        self.connector = connector or self._ssh_connector()
        self.client = client
        self.transports: dict[str, Transport] = {}
        self.tokens = TokenCache.load(state_dir(topology_file, topo.name) / "status-token.json")

    def _ssh_connector(self) -> Connector:
        from hastack.transport.ssh import connect

        base_dir = self.topology_file.resolve().parent
        return lambda node: connect(node, self.topo.ssh, base_dir)

    async def collect(self) -> ClusterState:
        t0, at = time.monotonic(), time.time()
        hosts_task = asyncio.gather(*(self._host(n) for n in self.topo.nodes))
        client_task = asyncio.ensure_future(self.client(self.topo, self.creds, self.tokens))
        reads = dict(zip([n.name for n in self.topo.nodes], await hosts_task, strict=True))
        client = await client_task
        return assemble(self.topo, str(self.topology_file), reads, client, at, time.monotonic() - t0,
                        rotating=self.creds.rotating)

    async def _host(self, node: Node) -> HostRead:
        t0 = time.monotonic()
        roles = tuple(node.roles)
        transport = await self._transport(node)
        if isinstance(transport, Unreachable):
            view = HostView(node.name, roles, str(node.address), False, transport.error.message,
                            time.monotonic() - t0)
            return HostRead(view, None)
        tasks = tasks_for(self.topo, node, self.creds)
        try:
            sections = await asyncio.wait_for(run_bundle(transport, tasks), budget(tasks) + 1.0 + SLACK)
        except (HostError, TimeoutError) as exc:
            await self._drop(node.name)
            message = exc.message if isinstance(exc, HostError) else "the status probe did not answer in time"
            return HostRead(HostView(node.name, roles, str(node.address), True, message, time.monotonic() - t0),
                            None)
        facts = read_host(sections)
        view = HostView(node.name, roles, str(node.address), True, "", time.monotonic() - t0, facts.problems)
        return HostRead(view, facts)

    async def _transport(self, node: Node) -> Transport:
        current = self.transports.get(node.name)
        if current is not None and not isinstance(current, Unreachable):
            return current
        try:
            t = await asyncio.wait_for(self.connector(node), self.topo.ssh.connect_timeout + SLACK)
        except HostError as exc:
            t = Unreachable(HostUnreachable(node.name, exc.message))
        except TimeoutError:
            t = Unreachable(HostUnreachable(node.name, f"did not answer within {self.topo.ssh.connect_timeout:g}s"))
        self.transports[node.name] = t
        return t

    async def _drop(self, name: str) -> None:
        """A broken or hung connection is closed and made again next round."""
        t = self.transports.pop(name, None)
        if t is not None:
            await asyncio.gather(t.close(), return_exceptions=True)

    async def close(self) -> None:
        await asyncio.gather(*(t.close() for t in self.transports.values()), return_exceptions=True)
        self.transports.clear()

    async def __aenter__(self) -> Collector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def read_cluster(topo: Topology, topology_file: Path, *, creds: Credentials | None = None,
                  connector: Connector | None = None, client: ClientCheck = default_client) -> ClusterState:
    """One round with fresh connections, closed afterwards."""
    async with Collector(topo, topology_file, creds=creds, connector=connector, client=client) as c:
        return await c.collect()


# -- assembling (pure) --------------------------------------------------------------------------


def assemble(topo: Topology, topology_file: str, reads: Mapping[str, HostRead], client: ClientView,
             collected_at: float = 0.0, seconds: float = 0.0, rotating: tuple[str, ...] = ()) -> ClusterState:
    facts = {name: r.facts for name, r in reads.items()}
    return ClusterState(
        name=topo.name, topology_file=topology_file, collected_at=collected_at, seconds=seconds,
        hosts=tuple(reads[n.name].view for n in topo.nodes),
        galera=galera_view(topo, facts, client), rabbit=rabbit_view(topo, facts), vip=vip_view(topo, facts, client),
        haproxy=haproxy_view(topo, facts, client), memcached=memcached_view(topo, facts),
        pacemaker=pacemaker_view(topo, facts), openstack=openstack_view(topo, facts, client), rotating=rotating,
    )


Facts = Mapping[str, HostFacts | None]


def _unit(f: HostFacts | None, name: str) -> UnitState | None:
    return f.unit(name) if f is not None else None


def galera_view(topo: Topology, facts: Facts, client: ClientView) -> GaleraView:
    nodes = []
    for n in topo.controllers:
        f = facts.get(n.name)
        nodes.append(GaleraNode(n.name, f is not None and f.galera is not None, f.galera if f else None,
                                f.grastate if f and f.grastate_read else None, _unit(f, "mariadb")))
    garbd = tuple(UnitCheck(n.name, "garbd", _unit(facts.get(n.name), "garbd")) for n in topo.garbd_nodes)
    writers = {n.name: f.haproxy.serving(haproxy.GALERA_PROXY) for n in topo.controllers
               if (f := facts.get(n.name)) is not None and f.haproxy is not None and f.haproxy.available}
    return GaleraView(topo.galera_votes, tuple(nodes), garbd, writers, client.sql)


def rabbit_view(topo: Topology, facts: Facts) -> RabbitView:
    nodes = []
    queues_from, queues, error, slow = "", None, "", False
    for n in topo.brokers:
        f = facts.get(n.name)
        rf = f.rabbit if f is not None else None
        nodes.append(RabbitNode(n.name, rabbitmq.nodename(n), rf is not None, rf, _unit(f, rabbitmq.UNIT)))
        if rf is None or not rf.local:
            continue
        if queues is None and rf.queues is not None:
            queues, queues_from = rf.queues, n.name
        error, slow = error or rf.queues_error, slow or rf.queues_slow
    return RabbitView(tuple(rabbitmq.nodename(n) for n in topo.brokers), tuple(nodes), queues, queues_from,
                      "" if queues is not None else error, queues is None and slow)


def vip_view(topo: Topology, facts: Facts, client: ClientView) -> VipView:
    vip = topo.network.vip
    holders, unread = [], []
    for n in topo.controllers:
        f = facts.get(n.name)
        if f is None or f.addresses is None:
            unread.append(n.name)
        elif f.addresses.holds(vip):
            holders.append(n.name)
    keepalived = tuple(UnitCheck(n.name, "keepalived", _unit(facts.get(n.name), "keepalived"))
                       for n in topo.controllers)
    answers = _vip_answers(client)
    return VipView(str(vip), tuple(holders), tuple(unread), keepalived, answers)


def _vip_answers(client: ClientView) -> bool | None:
    """Something answered on the VIP: SQL, or any HTTP status at all (HAProxy answers 503 itself)."""
    seen = [client.sql.answered] if client.sql is not None else []
    seen += [a.status is not None for a in client.apis]
    return any(seen) if seen else None


def haproxy_view(topo: Topology, facts: Facts, client: ClientView) -> HAProxyView:
    nodes = []
    for n in topo.controllers:
        f = facts.get(n.name)
        nodes.append(HAProxyNode(n.name, f is not None and f.haproxy is not None, f.haproxy if f else None,
                                 _unit(f, haproxy.UNIT)))
    os_view = openstack_view(topo, facts, client)
    watched = (haproxy.GALERA_PROXY, *(a.name for a in haproxy.apis(topo) if os_view.deployed(a.service)))
    return HAProxyView(tuple(nodes), watched)


def memcached_view(topo: Topology, facts: Facts) -> tuple[MemcachedNode, ...]:
    out = []
    for n in topo.controllers:
        f = facts.get(n.name)
        out.append(MemcachedNode(n.name, f is not None and f.memcached is not None, f.memcached if f else None))
    return tuple(out)


def pacemaker_view(topo: Topology, facts: Facts) -> PacemakerView:
    nodes = []
    for n in topo.network_nodes:
        f = facts.get(n.name)
        agents = tuple(UnitCheck(n.name, u, _unit(f, u)) for u in pacemaker.group_units(topo))
        own = [u for u in ("corosync", "corosync-qdevice", "pacemaker") if u in unit_names(topo, n)]
        nodes.append(PacemakerNode(n.name, f is not None and f.crm is not None, f.crm if f else None,
                                   f.fail_counts if f else (), agents if f else (),
                                   tuple(UnitCheck(n.name, u, _unit(f, u)) for u in own)))
    q = topo.qnetd_nodes[0] if topo.qnetd_nodes else None
    qnetd = UnitCheck(q.name, "corosync-qnetd", _unit(facts.get(q.name), "corosync-qnetd")) if q else None
    devices = {pacemaker.fence_id(n): n.name for n in topo.network_nodes}
    return PacemakerView(pacemaker.GROUP, tuple(pacemaker.group_units(topo)), tuple(nodes), topo.fencing.enabled,
                         topo.fencing.reason or "", qnetd, devices)


def openstack_view(topo: Topology, facts: Facts, client: ClientView) -> OpenStackView:
    from hastack.components.registry import component

    running: dict[str, tuple[str, ...]] = {}
    read = False
    for service in topo.openstack.services:
        comp = component(service)
        found = []
        for n in topo.controllers:
            f = facts.get(n.name)
            read = read or bool(f and f.units)
            for u in comp.units(topo, n) if comp.applies(topo, n) else []:
                s = _unit(f, u)
                if s is not None and (s.active or s.unit_file_state == "enabled"):
                    found.append(f"{n.name}/{u}")
        running[service] = tuple(found)
    return OpenStackView(tuple(topo.openstack.services), client.apis, running, read, client.catalog,
                         client.catalog_note)
