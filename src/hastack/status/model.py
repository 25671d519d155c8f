"""ClusterState: everything status read, per layer, typed. Pure data: verdict and render read it.

A value that could not be read is None (or `read=False`), never a default that looks healthy:
"ctl-1 did not answer" and "ctl-1 says MariaDB is down" are different findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hastack.facts import CrmMon, GaleraStatus, GraState, HAProxyStats, RabbitCluster, UnitState
from hastack.facts.memcached import MemcachedStats
from hastack.facts.pacemaker import FailCount
from hastack.facts.rabbitmq import Queue
from hastack.status.probes import Problem
from hastack.status.rabbit import RabbitFacts

# -- what the client saw through the VIP (status.client fills these in) --------------------------


@dataclass(frozen=True)
class ApiCheck:
    name: str
    """HAProxy listener name (keystone, nova_api, ...)."""
    service: str
    title: str
    url: str
    expected: int
    status: int | None = None
    """The HTTP status the VIP answered; None when nothing answered."""
    error: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == self.expected


@dataclass(frozen=True)
class SqlCheck:
    answered: bool
    node: str = ""
    """The hostname of the server HAProxy sent the connection to."""
    error: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class ServiceRow:
    """One nova/cinder service, neutron agent or heat engine as its API lists it."""

    kind: str
    """The catalog type: compute, network, volumev3, orchestration."""
    binary: str
    host: str
    up: bool
    enabled: bool = True


@dataclass(frozen=True)
class Catalog:
    checked: bool
    error: str = ""
    rows: tuple[ServiceRow, ...] = ()
    errors: tuple[str, ...] = ()
    """A list that could not be read (the service's API failed), one line each."""


@dataclass(frozen=True)
class HostView:
    name: str
    roles: tuple[str, ...]
    address: str
    reachable: bool
    """An SSH connection was made."""
    error: str = ""
    """Why the host could not be read: the connection's or the probe's error."""
    seconds: float = 0.0
    problems: tuple[Problem, ...] = ()
    """Parts of the host's answer that could not be read (a section timed out, unknown output)."""

    @property
    def read(self) -> bool:
        return self.reachable and not self.error


@dataclass(frozen=True)
class UnitCheck:
    """A systemd unit on a node, as `systemctl show` said (None: the node was not read)."""

    node: str
    unit: str
    state: UnitState | None

    @property
    def active(self) -> bool | None:
        return None if self.state is None else self.state.active


# -- Galera ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GaleraNode:
    name: str
    read: bool
    """The host answered and its wsrep status section was read."""
    status: GaleraStatus | None = None
    grastate: GraState | None = None
    unit: UnitState | None = None

    @property
    def answering(self) -> bool:
        return self.status is not None and self.status.available

    @property
    def cluster_status(self) -> str:
        return self.status.cluster_status if self.answering and self.status else ""

    @property
    def primary(self) -> bool:
        return self.answering and self.status is not None and self.status.primary

    @property
    def paused(self) -> float | None:
        """wsrep_flow_control_paused: the fraction of time replication was paused."""
        raw = self.status.values.get("wsrep_flow_control_paused", "") if self.answering and self.status else ""
        try:
            return float(raw)
        except ValueError:
            return None

    @property
    def position(self) -> int | None:
        """The best known seqno: last committed while running, grastate.dat's when stopped
        (-1 there after a crash: only `--wsrep-recover` knows)."""
        if self.answering and self.status is not None:
            return self.status.last_committed
        return self.grastate.seqno if self.grastate is not None else None


@dataclass(frozen=True)
class GaleraView:
    expected_votes: int
    nodes: tuple[GaleraNode, ...]
    garbd: tuple[UnitCheck, ...] = ()
    writers: dict[str, str | None] = field(default_factory=dict)
    """HAProxy node -> the Galera server it sends writes to (None: no server UP)."""
    sql: SqlCheck | None = None

    @property
    def primary_nodes(self) -> tuple[GaleraNode, ...]:
        return tuple(n for n in self.nodes if n.primary)

    @property
    def primary_size(self) -> int:
        return max((n.status.cluster_size for n in self.primary_nodes if n.status), default=0)


# -- RabbitMQ ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RabbitNode:
    name: str
    nodename: str
    read: bool
    facts: RabbitFacts | None = None
    unit: UnitState | None = None

    @property
    def serving(self) -> bool:
        """The broker on this node answers and serves its vhosts (its own, local answer)."""
        return self.facts is not None and self.facts.local is True

    @property
    def view(self) -> RabbitCluster | None:
        return self.facts.view if self.facts is not None else None


@dataclass(frozen=True)
class RabbitView:
    expected: tuple[str, ...]
    nodes: tuple[RabbitNode, ...]
    queues: tuple[Queue, ...] | None = None
    queues_from: str = ""
    queues_error: str = ""
    queues_slow: bool = False

    @property
    def majority(self) -> int:
        return len(self.expected) // 2 + 1

    @property
    def reference(self) -> RabbitNode | None:
        """The serving broker whose cluster view sees the most running members."""
        with_view = [n for n in self.nodes if n.serving and n.view is not None]
        return max(with_view, key=lambda n: len(n.view.running_nodes) if n.view else 0, default=None)

    @property
    def running(self) -> tuple[str, ...]:
        """Running members: the reference view's, else the brokers that said so themselves."""
        ref = self.reference
        if ref is not None and ref.view is not None:
            return tuple(sorted(ref.view.running_nodes))
        return tuple(sorted(n.nodename for n in self.nodes if n.serving))

    @property
    def slow_views(self) -> tuple[str, ...]:
        """Serving brokers whose cluster view did not answer in time (a member they still wait for)."""
        return tuple(n.name for n in self.nodes if n.serving and n.facts is not None and n.facts.view_slow)

    @property
    def quorum_queues(self) -> tuple[Queue, ...]:
        return tuple(q for q in self.queues or () if q.quorum)


# -- VIP, HAProxy, memcached ---------------------------------------------------------------------


@dataclass(frozen=True)
class VipView:
    address: str
    holders: tuple[str, ...]
    """Controllers that have the VIP configured (among those read)."""
    unread: tuple[str, ...]
    """Controllers whose addresses could not be read: they may hold it too."""
    keepalived: tuple[UnitCheck, ...] = ()
    answers: bool | None = None
    """The client side reached something on the VIP (SQL or an API), None when nothing was asked."""


@dataclass(frozen=True)
class HAProxyNode:
    name: str
    read: bool
    stats: HAProxyStats | None = None
    unit: UnitState | None = None

    @property
    def answering(self) -> bool:
        return self.stats is not None and self.stats.available


@dataclass(frozen=True)
class HAProxyView:
    nodes: tuple[HAProxyNode, ...]
    watched: tuple[str, ...]
    """Backends whose servers matter: galera and the APIs that are deployed."""


@dataclass(frozen=True)
class MemcachedNode:
    name: str
    read: bool
    stats: MemcachedStats | None = None


# -- Pacemaker ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PacemakerNode:
    name: str
    read: bool
    crm: CrmMon | None = None
    fail_counts: tuple[FailCount, ...] = ()
    agents: tuple[UnitCheck, ...] = ()
    """The group's units as systemd sees them on this node: the truth when Pacemaker's views differ."""
    units: tuple[UnitCheck, ...] = ()
    """corosync, corosync-qdevice, pacemaker."""

    @property
    def answering(self) -> bool:
        return self.crm is not None and self.crm.available

    @property
    def agents_active(self) -> tuple[str, ...]:
        return tuple(a.unit for a in self.agents if a.active)


@dataclass(frozen=True)
class PacemakerView:
    group: str
    agent_units: tuple[str, ...]
    nodes: tuple[PacemakerNode, ...]
    fencing_expected: bool
    fencing_reason: str = ""
    qnetd: UnitCheck | None = None
    fence_devices: dict[str, str] = field(default_factory=dict)
    """Fence device id -> the node it fences (hastack's own naming)."""

    @property
    def reference(self) -> PacemakerNode | None:
        """The view to trust: a quorate one (the DC's first), else any that answered."""
        answering = [n for n in self.nodes if n.answering and n.crm is not None]
        quorate = [n for n in answering if n.crm and n.crm.with_quorum]
        dc_first = sorted(quorate, key=lambda n: not (n.crm and n.crm.dc == n.name))
        chosen = dc_first or answering
        return chosen[0] if chosen else None


# -- OpenStack ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenStackView:
    services: tuple[str, ...]
    apis: tuple[ApiCheck, ...] = ()
    running_units: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """service -> `node/unit` of its units that are active or enabled on a controller."""
    units_read: bool = False
    """At least one controller's units were read."""
    catalog: Catalog | None = None
    catalog_note: str = ""

    def deployed(self, service: str) -> bool:
        answered = any(a.ok for a in self.apis if a.service == service)
        return answered or bool(self.running_units.get(service))


# -- the whole ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterState:
    name: str
    topology_file: str
    collected_at: float
    seconds: float
    hosts: tuple[HostView, ...]
    galera: GaleraView
    rabbit: RabbitView
    vip: VipView
    haproxy: HAProxyView
    memcached: tuple[MemcachedNode, ...]
    pacemaker: PacemakerView
    openstack: OpenStackView
    rotating: tuple[str, ...] = ()
    """Service logins whose rotation is not finished (read from the secrets file, not from a host)."""

    def host(self, name: str) -> HostView:
        return next(h for h in self.hosts if h.name == name)
