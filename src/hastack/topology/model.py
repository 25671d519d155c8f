"""The typed topology: what an operator writes in topology.yml, with defaults for the rest.

The model only checks the *shape* of each value (types, ranges, unknown keys). Rules that
relate values to each other (votes, quorum, unique addresses, ...) live in `validate.py`,
so that every problem can be reported at once with its file:line.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

import pydantic
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
)

LAX = pydantic.Strict(False)
"""For the few types whose YAML form is text to convert (addresses, paths) in an otherwise strict model."""
Role = Literal["controller", "network", "compute", "arbitrator"]
ServiceName = Literal["keystone", "glance", "placement", "nova", "neutron", "cinder", "heat", "telemetry"]
HostName = Annotated[str, StringConstraints(pattern=r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")]
DnsName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")]

# -- every string that reaches a config file, a script or an argv has a pattern -----------------
RESERVED_INTERFACES = frozenset({"all", "default"})
"""Names the kernel refuses (`RTNETLINK answers: Invalid argument`): they are the per-protocol
/proc/sys/net/*/conf/ entries. Found by the image tier's hostile-topology test: the model accepted
`interface: all`, and the test could not create such an interface for keepalived to use."""


def _usable_interface(name: str) -> str:
    if name.startswith("-"):
        raise ValueError(f"interface {name!r} starts with '-': in a command line it would read as an option")
    if name in RESERVED_INTERFACES:
        raise ValueError(f"interface {name!r} is a name Linux reserves (/proc/sys/net/ipv4/conf/{name})")
    if name == "lo":
        raise ValueError("interface 'lo' is the loopback: no VIP or cluster traffic can reach another node there")
    return name


InterfaceName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*$",
                                                 min_length=1, max_length=15),
                          AfterValidator(_usable_interface)]
"""A Linux interface name (IFNAMSIZ - 1 characters, not '.' or '..', not a reserved one nor the loopback), from a set
that no config syntax gives a meaning to: the value is written bare into keepalived.conf, where a
newline started a directive of the attacker's (`notify_master`)."""
UserName = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")]
"""A POSIX login name; it becomes `user@host` in an ssh argv, where '-oProxyCommand=...' would be an option."""
LocalPath = Annotated[Path, LAX, BeforeValidator(lambda v: _path_text(v))]
FenceParamKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
"""A fence agent's instance attribute: crmsh writes `key=value` tokens, so a key can carry no syntax."""
FREE_TEXT_MAX = 1000


def _printable(value: str, what: str, limit: int, *, lines: bool = False) -> str:
    """No control or invisible characters (with `lines`, tab and newline aside): text the model keeps
    is never a way to start a line, a directive or an escape in a file it reaches later."""
    if len(value) > limit:
        raise ValueError(f"{what} is at most {limit} characters")
    for ch in value:
        if not (ch.isprintable() or (lines and ch in "\t\n")):
            raise ValueError(f"{what} may not contain the character {ch!r}")
    return value


def _path_text(value: object) -> object:
    return _printable(value, "a path", 4096) if isinstance(value, str) else value


FreeText = Annotated[str, AfterValidator(lambda v: _printable(v, "this text", FREE_TEXT_MAX, lines=True))]


def _not_a_number(value: object) -> object:
    """YAML `172818443` or `true` is a number; pydantic would make it 10.77.0.11 or 0.0.0.1. An address
    in a topology is written as text, so a number there is a mistake, not a notation."""
    if isinstance(value, bool | int | float):
        raise ValueError("write the address as text, e.g. 10.0.0.1 (or 10.0.0.0/24 for a network)")
    return value


IPv4 = Annotated[ipaddress.IPv4Address, LAX, BeforeValidator(_not_a_number)]
IPv4Net = Annotated[ipaddress.IPv4Network, LAX, BeforeValidator(_not_a_number)]

# -- durations and sizes: bounded by what the daemon reading them accepts ------------------------
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def size_bytes(size: str) -> int:
    return int(size[:-1]) * _UNITS[size[-1]]


def _size_between(low: str, high: str) -> Callable[[str], str]:
    def check(size: str) -> str:
        if not size_bytes(low) <= size_bytes(size) <= size_bytes(high):
            raise ValueError(f"must be between {low} and {high}")
        return size
    return check


def _duration_between(low: float, high: float) -> Callable[[str], str]:
    def check(iso: str) -> str:
        if not low <= float(iso[2:-1]) <= high:
            raise ValueError(f"must be between PT{low:g}S and PT{high:g}S")
        return iso
    return check


_SizeText = Annotated[str, StringConstraints(pattern=r"^[1-9]\d{0,6}[KMG]$")]
GcacheSize = Annotated[_SizeText, AfterValidator(_size_between("1M", "1024G"))]
"""Galera's ring buffer, a file of this size: past a TiB it is a typo, not a disk."""
BufferPoolSize = Annotated[_SizeText, AfterValidator(_size_between("8M", "1024G"))]
"""innodb_buffer_pool_size: MariaDB refuses to start below its minimum and cannot allocate a typo."""
IsoDuration = Annotated[str, StringConstraints(pattern=r"^PT\d{1,4}(\.\d{1,3})?S$"),
                        AfterValidator(_duration_between(0.1, 3600))]
"""Galera's EVS periods. Galera keeps them in nanoseconds (64 bits); an hour is already no failure
detection at all."""
HAPROXY_MAX_S = 86_400
"""HAProxy refuses timers past 2^31 - 1 ms (24.8 days); no client, server or Galera connection here
should idle a day."""

DEFAULT_SERVICES: tuple[ServiceName, ...] = (
    "keystone", "glance", "placement", "nova", "neutron", "cinder", "heat",
)


class Strict(BaseModel):
    """strict: YAML gives typed scalars, so `true` is not a port, 1e26 not a timeout, 1 not a flag."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _fence_value(value: object) -> str | int | bool:
    """One fence parameter value. crmsh reads its file line by line, shlex-splits each line and
    turns every non-ASCII character into an XML character reference: so printable ASCII only (the
    quoting in `pacemaker.crm_value` handles the rest), and integers a C agent can hold."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -(2**31) <= value < 2**31:
            raise ValueError("a number here fits in 32 bits")
        return value
    if not isinstance(value, str):
        raise ValueError("a fence parameter is text, a whole number or true/false")
    if len(value) > 512 or not re.fullmatch(r"[\x20-\x7e]*", value):
        raise ValueError("a fence parameter is at most 512 printable ASCII characters (no newline or tab)")
    return value


FenceValue = Annotated[str | int | bool, PlainValidator(_fence_value, json_schema_input_type=str | int | bool)]
FENCE_SECRET = re.compile(r"passw|secret|token|community|key|credential", re.IGNORECASE)
"""Fence parameter names whose value is a credential (passwd, password, snmp_priv_passwd, community,
api_key, ...): the crm file that holds them is rendered as a secret. Erring towards more matches
only hides a diff."""


class FenceDevice(Strict):
    """A fence agent (any `fence_*` from fence-agents, or the lab's `fence_hastack`) and its options."""

    agent: Annotated[str, StringConstraints(pattern=r"^fence_[a-z0-9_]{1,64}$")]
    params: dict[FenceParamKey, FenceValue] = Field(default_factory=dict, max_length=64)

    def secret_values(self) -> list[str]:
        return [str(v) for k, v in self.params.items() if FENCE_SECRET.search(k)]


class Node(Strict):
    name: HostName
    address: IPv4
    roles: Annotated[list[Role], Field(min_length=1)]
    fencing: FenceDevice | None = None

    def has(self, role: Role) -> bool:
        return role in self.roles

    @property
    def corosync_nodeid(self) -> int:
        """The low 16 bits of the address (10.77.0.21 -> 21): the id corosync numbers a network node by
        (knet takes 1-65535). See corosync.nodeid for why, validate for the clashes it refuses."""
        return int(self.address) & 0xFFFF


class PublicNetwork(Strict):
    cidr: IPv4Net
    vip: IPv4
    interface: InterfaceName = "eth1"


class Network(Strict):
    management: IPv4Net
    vip: IPv4
    interface: InterfaceName = "eth0"
    public: PublicNetwork | None = None
    tls: bool = True
    """HAProxy terminates TLS on every API frontend and on the stats pages, with a certificate from
    the cluster's own CA (pki.py); the Keystone catalog and every service say https. `false` serves
    plain HTTP (a lab behind its own firewall, or TLS terminated by something in front)."""


class Ssh(Strict):
    user: UserName = "root"
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    key: LocalPath | None = None
    known_hosts: LocalPath | None = None
    connect_timeout: Annotated[float, Field(gt=0, le=120)] = 5.0
    max_parallel: Annotated[int, Field(ge=1, le=256)] = 16


class Fencing(Strict):
    """Fencing is on unless switched off *with a written reason* (it is what prevents split brain)."""

    enabled: bool = True
    reason: FreeText | None = None


class KeepalivedTuning(Strict):
    advert_int: Annotated[float, Field(ge=0.01, le=255)] = 0.1
    router_id: Annotated[int, Field(ge=1, le=255)] = 51
    public_router_id: Annotated[int, Field(ge=1, le=255)] = 52
    check_interval: Annotated[int, Field(ge=1, le=60)] = 1
    """keepalived 2.2 takes whole seconds for a track script's interval."""
    check_fall: Annotated[int, Field(ge=1, le=20)] = 2
    check_rise: Annotated[int, Field(ge=1, le=20)] = 2
    rt_priority: Annotated[int, Field(ge=0, le=99)] = 50
    """Realtime (SCHED_RR) priority of keepalived's VRRP process, which is also locked in memory;
    0 leaves it at normal scheduling (keepalived's default)."""


class HAProxyTuning(Strict):
    check_inter_ms: Annotated[int, Field(ge=50, le=60000)] = 500
    check_fastinter_ms: Annotated[int, Field(ge=50, le=60000)] = 200
    check_downinter_ms: Annotated[int, Field(ge=50, le=60000)] = 2000
    """How often a server already marked DOWN is checked. A controller coming back from a power-off
    opens its API sockets long before the apps behind them have loaded (lazy-apps on a loaded
    host): every check meanwhile waits in the socket's queue until it times out, and the app still
    answers each one once it runs. At 500 ms three HAProxies filled uWSGI's queue of 100 (checks
    `L4TOUT` in each of five heals, 2026-12-07; none in twelve at 2 s). A returning server is seen at
    most this much (plus fastinter x rise) after it is ready; a failure is still caught at
    `check_inter_ms`."""
    check_rise: Annotated[int, Field(ge=1, le=20)] = 2
    check_fall: Annotated[int, Field(ge=1, le=20)] = 2
    timeout_connect_ms: Annotated[int, Field(ge=100, le=120_000)] = 2000
    timeout_client_s: Annotated[int, Field(ge=1, le=HAPROXY_MAX_S)] = 90
    timeout_server_s: Annotated[int, Field(ge=1, le=HAPROXY_MAX_S)] = 90
    galera_timeout_s: Annotated[int, Field(ge=1, le=HAPROXY_MAX_S)] = 3600


class GaleraTuning(Strict):
    evs_suspect_timeout: IsoDuration = "PT2S"
    evs_inactive_timeout: IsoDuration = "PT8S"
    """A peer every member suspects (suspect_timeout) is evicted then, on consensus; this hard limit
    is for a peer only some members suspect. It bounds evs_install_timeout from above, hence 8 s."""
    evs_keepalive_period: IsoDuration = "PT0.5S"
    evs_install_timeout: IsoDuration = "PT7.5S"
    """How long a membership change waits for every member to acknowledge the new view (Galera
    allows [keepalive, inactive_timeout); it derived 1.5 s from PT3S). A controller booting its whole
    OpenStack on a 2-core lab answered too late: the survivor declared it AND garbd inactive and went
    non-Primary for 14 s at the heal (seen 2026-12-04). A join may now take 7.5 s, as with Galera's
    defaults; a member's failure is still caught by suspect_timeout."""
    gcache_size: GcacheSize = "256M"
    buffer_pool_size: BufferPoolSize = "64M"
    sst_method: Literal["mariabackup", "rsync"] = "mariabackup"
    pc_recovery: bool = True


class CorosyncTuning(Strict):
    token: Annotated[int, Field(ge=100, le=60000)] = 1000
    token_coefficient: Annotated[int, Field(ge=0, le=5000)] = 650
    dc_deadtime_s: Annotated[int, Field(ge=1, le=120)] = 5
    priority_fencing_delay_s: Annotated[int, Field(ge=0, le=120)] = 0


PartitionHandling = Literal["pause_minority", "autoheal", "ignore"]


class RabbitMQTuning(Strict):
    partition_handling: PartitionHandling | None = None
    """None: `pause_minority` with 3 brokers or more (the minority side stops serving, nothing
    diverges), `autoheal` with 2 (only possible with `rabbitmq.queues: mirrored`): with two brokers
    either one alone is a minority, so pause_minority would stop the survivor of a controller loss."""
    net_ticktime: Annotated[int, Field(ge=5, le=600)] = 60
    """Seconds before Erlang declares a silent peer down (RabbitMQ's default, kept). Until then every
    metadata operation (a declare, a reconnecting client's reply queue) waits for the dead node: in
    the lab, after a controller's power-off, nova-api's publishes stalled 53 s and were then nacked
    (HTTP 500). 15 s shortened that window, but in CI a 20-odd-second cut of one controller then
    became a RabbitMQ partition that pause_minority had not healed 180 s later, and a `server create`
    during a controller power-off failed: not a safe default on a loaded 2-core host yet."""
    dead_peer_after_s: Annotated[float, Field(ge=0, le=300)] = 3
    """A host whose broker's kernel has not answered a TCP connection for this long counts it dead
    (hastack-rabbit-peers.service, agents/rabbit_peers.py): a broker drops it
    (`erlang:disconnect_node`; only with pause_minority), its `nodedown` then, not after
    net_ticktime; and every host of OpenStack services cuts its connections to the dead one's AMQP
    port, so its clients move to another broker at once, not at their heartbeat. Kernel answers,
    not Erlang ticks: a loaded host still answers. 3 is the value measured in the lab; 0 turns it
    off. History (README, "A dead broker dropped in seconds"): the brokers' half alone did not save
    CI's `server create` runs while a controller was off (their services still waited for their
    heartbeat); both halves on lost one glance-api image notification, a notifier quirk since
    fixed (components/openstack.py, NOTIFICATION_RETRY); with the watch off, CI's build while the
    VIP controller was off failed on an RPC call 110 s after the power-off (2026-12-07)."""
    rpc_response_timeout: Annotated[int, Field(ge=1, le=600)] = 10
    heartbeat_timeout_s: Annotated[int, Field(ge=2, le=600)] = 20
    """oslo.messaging's `heartbeat_timeout_threshold` in every service: how long a client waits on a
    broker that went silent (powered off, cut) before it reconnects to another. An RPC server (a
    conductor, a scheduler) attached to that broker receives nothing until then: the drills' RPC
    workload measured a 27.9 s gap with 20 s (issue 13). oslo.messaging's own default is 60 s."""


class ApiWatchdogTuning(Strict):
    """Liveness of the OpenStack APIs on each controller (hastack-api-watchdog.service): a unit that
    has been active longer than `grace_s` and gave no HTTP answer at all (any status counts as an
    answer) to `failures` checks in a row, `interval_s` apart, is restarted. HAProxy already takes a
    backend that answers badly out of the VIP's rotation; this brings back one that hangs."""

    enabled: bool = True
    interval_s: Annotated[int, Field(ge=1, le=300)] = 5
    timeout_s: Annotated[int, Field(ge=1, le=60)] = 5
    failures: Annotated[int, Field(ge=2, le=100)] = 12
    grace_s: Annotated[int, Field(ge=30, le=3600)] = 180
    """After a unit (re)starts: a cold API on a loaded 2-core lab answers after up to a few minutes."""


class Tuning(Strict):
    keepalived: KeepalivedTuning = KeepalivedTuning()
    haproxy: HAProxyTuning = HAProxyTuning()
    galera: GaleraTuning = GaleraTuning()
    corosync: CorosyncTuning = CorosyncTuning()
    rabbitmq: RabbitMQTuning = RabbitMQTuning()
    api_watchdog: ApiWatchdogTuning = ApiWatchdogTuning()


class RabbitMQ(Strict):
    """How OpenStack's RPC queues are replicated.

    `quorum` (default): Raft-replicated quorum queues; a queue serves while a majority of its members
    is up, so the cluster needs >= 3 brokers (an 'arbitrator' on a non-controller adds the third).
    `mirrored`: the seed document's classic mirrored queues (policy ha-mode all, automatic sync),
    which keep serving on a lone survivor but can lose acknowledged messages on a partition
    (Jepsen, 2014): only when the topology chooses it, with a warning."""

    queues: Literal["quorum", "mirrored"] = "quorum"


Calendar = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9*:,./~ -]{1,64}$")]
"""A systemd calendar event (systemd.time(7)): `daily`, `Mon..Fri *-*-* 02:00`, `*-*-* 00/6:30`.
Only the characters that grammar uses, so nothing else reaches the timer file; the grammar itself is
checked by systemd when deploy starts the timer (a bad one fails that step, naming it)."""


class Backups(Strict):
    """Scheduled database backups: a timer on every controller; when it fires, the one node that
    takes the backup is chosen there and then (agents/db_backup.py `scheduled`), like `hastack backup`."""

    full: Calendar
    incremental: Calendar | None = None
    """Incrementals between the fulls (based on the node's newest backup; a full when it has none)."""
    keep: Annotated[int, Field(ge=1, le=100)] = 2
    """Full backups (with their incrementals) kept on a node; older chains go after a new full."""


class OpenStack(Strict):
    release: Literal["zed"] = "zed"
    region: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")] = "RegionOne"
    services: list[ServiceName] = Field(default_factory=lambda: list(DEFAULT_SERVICES))
    l2_agent: Literal["linuxbridge", "openvswitch"] = "linuxbridge"
    compute_driver: Literal["libvirt", "fake"] = "libvirt"
    api_workers: Annotated[int, Field(ge=1, le=64)] = 1
    agent_host: DnsName = "network-agents"
    """The one `host` identity both network nodes present, so routers follow the Pacemaker group."""


class Topology(Strict):
    name: HostName
    domain: DnsName = "hastack.local"
    network: Network
    ssh: Ssh = Ssh()
    fencing: Fencing = Fencing()
    nodes: Annotated[list[Node], Field(min_length=1)]
    rabbitmq: RabbitMQ = RabbitMQ()
    openstack: OpenStack = OpenStack()
    backups: Backups | None = None
    tuning: Tuning = Tuning()

    # -- views used by every component ------------------------------------------------
    @property
    def api_scheme(self) -> str:
        return "https" if self.network.tls else "http"

    def vip_url(self, port: int, path: str = "") -> str:
        """An API URL on the VIP: what every client, service and catalog entry uses."""
        return f"{self.api_scheme}://{self.network.vip}:{port}{path}"

    def with_role(self, role: Role) -> list[Node]:
        return [n for n in self.nodes if n.has(role)]

    @property
    def controllers(self) -> list[Node]:
        return self.with_role("controller")

    @property
    def network_nodes(self) -> list[Node]:
        return self.with_role("network")

    @property
    def computes(self) -> list[Node]:
        return self.with_role("compute")

    @property
    def garbd_nodes(self) -> list[Node]:
        """An arbitrator adds a Galera vote (garbd) when it is not itself a Galera member."""
        return [n for n in self.with_role("arbitrator") if not n.has("controller")]

    @property
    def qnetd_nodes(self) -> list[Node]:
        """An arbitrator adds a corosync vote (qnetd) when it is not itself a cluster member."""
        return [n for n in self.with_role("arbitrator") if not n.has("network")]

    @property
    def rabbit_arbitrators(self) -> list[Node]:
        """An arbitrator that is not a controller also runs a RabbitMQ broker: a quorum-queue member
        and a cluster vote (like garbd for Galera), so 2 controllers still leave a majority."""
        return [n for n in self.with_role("arbitrator") if not n.has("controller")]

    @property
    def brokers(self) -> list[Node]:
        """Every RabbitMQ cluster member, controllers first (services connect to those only)."""
        return self.controllers + self.rabbit_arbitrators

    @property
    def partition_handling(self) -> PartitionHandling:
        chosen = self.tuning.rabbitmq.partition_handling
        if chosen is not None:
            return chosen
        return "pause_minority" if len(self.brokers) >= 3 else "autoheal"

    @property
    def galera_votes(self) -> int:
        return len(self.controllers) + len(self.garbd_nodes)

    @property
    def corosync_votes(self) -> int:
        return len(self.network_nodes) + (1 if self.qnetd_nodes else 0)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def fqdn(self, node: Node) -> str:
        return f"{node.name}.{self.domain}"

    def runs(self, service: ServiceName) -> bool:
        return service in self.openstack.services
