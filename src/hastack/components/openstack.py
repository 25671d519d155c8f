"""What every OpenStack service's configuration shares: where Keystone, the database, the brokers
and the caches are, and how a Debian uWSGI API is told where to listen.

Rules every helper here keeps (and tests/unit/test_render_openstack.py checks):
- Anything a client reaches through the load balancer names the VIP, never a node: the database
  (HAProxy sends it to the one Galera writer), Keystone, every endpoint.
- The brokers are NOT behind HAProxy: `transport_url` lists every controller's RabbitMQ directly
  (oslo.messaging shuffles the list and fails over by itself). It is `rabbitmq.transport_url`, so the
  user and vhost names cannot drift from the broker's definitions file.
- memcached is not behind HAProxy either: clients hash keys over every controller's memcached.
- A service's files carry only its own passwords (plus the shared metadata and memcache secrets):
  each service calls the others with its own Keystone user, which has the admin role in the
  `service` project. Files with a password are 0640 root:<service group>, marked secret.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hastack import pki
from hastack.components import logins, memcached, rabbitmq
from hastack.components.base import HEADER, Ctx, File, ini
from hastack.topology.model import Node, ServiceName, Topology

Sections = dict[str, dict[str, Any]]

KEYSTONE_PORT = 5000
SERVICE_PROJECT = "service"
DOMAIN = "Default"
MEMCACHE_SECRET = "memcache/secret"
"""keystonemiddleware's key for the token cache entries it writes to memcached (every service the same)."""
METADATA_SECRET = "metadata/secret"
"""Shared by nova's metadata API and neutron's metadata agent, which signs the instances' requests."""

# oslo.messaging: a broker that dies without closing its sockets (power cut, link cut) is noticed
# only by missed heartbeats, after `tuning.rabbitmq.heartbeat_timeout_s` (20 s: the default 60 s stalls
# RPC for a minute; 20 s still tolerates a CPU-starved eventlet loop on a 2-core lab), checked twice
# per interval.
HEARTBEAT_RATE = 2
# Reconnect back-off cap: after a whole-cluster broker outage clients are back within 10 s of the
# brokers, instead of up to 30 s.
RABBIT_INTERVAL_MAX_S = 10
NOTIFICATION_RETRY = 12
"""`[oslo_messaging_notifications] retry`. oslo.messaging's default, -1 ("forever"), reaches kombu's
`ensure_connection` unchanged when a notifier opens a connection (oslo.messaging 14.0,
impl_rabbit `Connection.ensure_connection`), and kombu reads a negative `max_retries` as "no retry":
a notifier whose first try hits a dead broker (oslo.messaging shuffles `transport_url`) raises at
once, without moving to the next broker, and the notification is dropped. CI lost glance-api's
image notification that way while a controller was off (2026-12-07). 12: every broker of the URL is
tried, with two brokers six whole cycles of them with kombu's growing pause between cycles (1, 3, 5,
7, 9, 9 s with rabbit_interval_max 10), about 35 s, before a notification is given up; an API worker
is not held for ever by a cloud without any broker."""
# memcached on a dead controller: each call waits at most 1 s, then the server is skipped for 60 s
# (default 300 s) so a controller that comes back takes its share of the cache again soon.
MEMCACHE_SOCKET_TIMEOUT_S = 1
MEMCACHE_DEAD_RETRY_S = 60


# -- merging section dicts -----------------------------------------------------------------------
def merge(*parts: Sections) -> Sections:
    """Sections in first-seen order; a later part adds keys to a section an earlier one opened.

    Setting the same key twice is a bug (two helpers disagreeing) and raises.
    """
    out: Sections = {}
    for part in parts:
        for section, options in part.items():
            target = out.setdefault(section, {})
            for key, value in options.items():
                if key in target and target[key] != value:
                    raise ValueError(f"[{section}] {key} set twice with different values")
                target[key] = value
    return out


def config_file(path: str, sections: Sections, group: str, restarts: Iterable[str], *,
                secret: bool = True) -> File:
    """An oslo.config file: with a secret it is 0640 root:<group> (the daemons run as <group>)."""
    text = ini(sections, header=HEADER)
    if secret:
        return File(path, text, owner="root", group=group, mode=0o640, secret=True, restarts=tuple(restarts))
    return File(path, text, owner="root", group=group, mode=0o644, restarts=tuple(restarts))


# -- addresses ---------------------------------------------------------------------------------------
def url(ctx: Ctx, port: int, path: str = "") -> str:
    """An API URL on the VIP (HAProxy spreads it over every controller's own address): https
    unless the topology turned TLS off."""
    return ctx.topo.vip_url(port, path)


def tls_trust(ctx: Ctx) -> dict[str, Any]:
    """keystoneauth's session option naming the cluster's CA (the system store has it too: this
    keeps a service working even where a library bundles its own CA list)."""
    return {"cafile": pki.CA_PATH} if ctx.topo.network.tls else {}


def proxy_headers() -> Sections:
    """Every API sits behind HAProxy, which sets X-Forwarded-Proto: oslo.middleware's
    HTTPProxyToWSGI (in each service's pipeline) then makes the version documents and links say
    the scheme the client used, so keystoneauth's discovery stays on https."""
    return {"oslo_middleware": {"enable_proxy_headers_parsing": True}}


def auth_url(ctx: Ctx) -> str:
    return url(ctx, KEYSTONE_PORT)


def memcache_servers(topo: Topology) -> list[str]:
    return memcached.servers(topo)


# -- database ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Database:
    """A database deploy creates (once, through the VIP) and the account that owns it."""

    name: str
    user: str


DATABASES: dict[ServiceName, tuple[Database, ...]] = {
    "keystone": (Database("keystone", "keystone"),),
    "glance": (Database("glance", "glance"),),
    "placement": (Database("placement", "placement"),),
    "nova": (Database("nova_api", "nova"), Database("nova", "nova"), Database("nova_cell0", "nova")),
    "neutron": (Database("neutron", "neutron"),),
    "cinder": (Database("cinder", "cinder"),),
    "heat": (Database("heat", "heat"),),
    "telemetry": (Database("aodh", "aodh"), Database("gnocchi", "gnocchi")),
}


def databases(topo: Topology) -> list[Database]:
    """Every database of the services this topology runs: `GRANT ALL ON <name>.* TO <user>@'%'`."""
    return [db for s in topo.openstack.services for db in DATABASES[s]]


def db_url(ctx: Ctx, user: str, database: str) -> str:
    """SQLAlchemy URL through the VIP: HAProxy forwards 3306 to the single Galera writer."""
    lg = logins.login(ctx.secrets, "db", user)
    return f"mysql+pymysql://{lg.user}:{lg.password}@{ctx.vip}/{database}"


def database(ctx: Ctx, user: str, name: str, section: str = "database") -> Sections:
    """oslo.db: retry for ever while the writer is away (a failover is seconds, not a reason to
    exit), and recycle pooled connections well before HAProxy's idle timeout cuts them."""
    recycle = max(60, ctx.topo.tuning.haproxy.galera_timeout_s // 2)
    return {section: {"connection": db_url(ctx, user, name), "max_retries": -1,
                      "connection_recycle_time": recycle}}


# -- messaging ---------------------------------------------------------------------------------------
def messaging(ctx: Ctx, service: ServiceName) -> Sections:
    """RPC on the service's own vhost, quorum queues, quicker dead-broker detection."""
    return merge(
        {"DEFAULT": {"transport_url": rabbitmq.transport_url(ctx, service),
                     "rpc_response_timeout": ctx.topo.tuning.rabbitmq.rpc_response_timeout}},
        rabbit_options(ctx.topo),
        notifications(ctx),
    )


def rabbit_options(topo: Topology) -> Sections:
    """Quorum queues, or (`rabbitmq.queues: mirrored`) classic queues that the brokers' `ha-all`
    policy mirrors; `rabbit_ha_queues` is what oslo.messaging calls its side of that choice."""
    quorum = topo.rabbitmq.queues == "quorum"
    return {"oslo_messaging_rabbit": {
        "rabbit_quorum_queue": quorum,
        **({} if quorum else {"rabbit_ha_queues": True}),
        "heartbeat_timeout_threshold": topo.tuning.rabbitmq.heartbeat_timeout_s,
        "heartbeat_rate": HEARTBEAT_RATE,
        "rabbit_interval_max": RABBIT_INTERVAL_MAX_S,
    }}


def notifications(ctx: Ctx) -> Sections:
    """Notifications exist only for telemetry: then every service publishes them to the `telemetry`
    vhost (with the telemetry account, the one the broker's definitions give rights there), where
    ceilometer's notification agent reads them. Without telemetry nothing is emitted."""
    if not ctx.topo.runs("telemetry"):
        return {}
    return merge(rabbit_options(ctx.topo), {"oslo_messaging_notifications": {
        "driver": "messagingv2", "transport_url": rabbitmq.transport_url(ctx, "telemetry"),
        "retry": NOTIFICATION_RETRY}})


# -- keystone clients --------------------------------------------------------------------------------
def password_auth(ctx: Ctx, user: str) -> dict[str, Any]:
    """keystoneauth password plugin options for the service user `user` in project `service` (its
    current login: `components/logins.py`)."""
    lg = logins.login(ctx.secrets, "keystone", user)
    return {
        "auth_type": "password",
        "auth_url": auth_url(ctx),
        "project_domain_name": DOMAIN,
        "user_domain_name": DOMAIN,
        "project_name": SERVICE_PROJECT,
        "username": lg.user,
        "password": lg.password,
        **tls_trust(ctx),
    }


def client_section(ctx: Ctx, user: str, **extra: Any) -> dict[str, Any]:
    """A [placement]/[neutron]/[nova]-style section: own credentials, topology region, internal URLs."""
    return {**password_auth(ctx, user), "region_name": ctx.topo.openstack.region, **extra}


def keystone_authtoken(ctx: Ctx, user: str, *, proxied: bool = True) -> Sections:
    """keystonemiddleware: tokens validated through the VIP, cached in every controller's memcached.

    The cache is ENCRYPTed with the shared `memcache/secret`: memcached has no authentication, and
    the cached entries are token validations (roles, catalog) anyone on the network could read or
    plant otherwise. Service tokens must carry the `service` role (the fix for OSSA-2023-003):
    deploy gives every service user that role. Every service that checks tokens serves an API
    behind HAProxy, so this is also where it learns to read X-Forwarded-Proto (`proxy_headers`).
    """
    return {**(proxy_headers() if proxied else {}), "keystone_authtoken": {
        "www_authenticate_uri": auth_url(ctx),
        **password_auth(ctx, user),
        "region_name": ctx.topo.openstack.region,
        "memcached_servers": memcache_servers(ctx.topo),
        "memcache_security_strategy": "ENCRYPT",
        "memcache_secret_key": ctx.secrets.password(MEMCACHE_SECRET),
        "memcache_pool_socket_timeout": MEMCACHE_SOCKET_TIMEOUT_S,
        "memcache_pool_dead_retry": MEMCACHE_DEAD_RETRY_S,
        "service_token_roles_required": True,
    }}


def oslo_cache(ctx: Ctx) -> Sections:
    return {"cache": {
        "enabled": True,
        "backend": "oslo_cache.memcache_pool",
        "memcache_servers": memcache_servers(ctx.topo),
        "memcache_socket_timeout": float(MEMCACHE_SOCKET_TIMEOUT_S),
        "memcache_dead_retry": MEMCACHE_DEAD_RETRY_S,
    }}


def service_user(ctx: Ctx, user: str) -> Sections:
    """[service_user]: send a service token with user requests to other services, so a user token
    that expires during a long operation (a boot, a volume attach) does not fail it. nova-status
    fails its upgrade check without it (OSSA-2023-003)."""
    return {"service_user": {"send_service_user_token": True, **password_auth(ctx, user)}}


def lock_path(service: str) -> Sections:
    """Debian's own lock directory (created by the packages' units)."""
    return {"oslo_concurrency": {"lock_path": f"/var/lock/{service}"}}


# -- service users -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServiceUser:
    """A Keystone user deploy creates in domain Default with roles admin and service in project
    `service` (admin: what each service needs from the others; service: marks its service tokens)."""

    name: str


SERVICE_USERS: dict[ServiceName, tuple[str, ...]] = {
    "keystone": (),
    "glance": ("glance",),
    "placement": ("placement",),
    "nova": ("nova",),
    "neutron": ("neutron",),
    "cinder": ("cinder",),
    "heat": ("heat",),
    "telemetry": ("ceilometer", "aodh", "gnocchi"),
}


def service_users(topo: Topology) -> list[ServiceUser]:
    return [ServiceUser(u) for s in topo.openstack.services for u in SERVICE_USERS[s]]


# -- uWSGI APIs --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Uwsgi:
    """A Debian uWSGI API and the lines of the ini Debian ships for it.

    Debian's init script (openstack-pkg-tools) starts uWSGI with `--http-socket :<port>` (every
    address) before `--ini`, then sources /etc/default/<init NAME>. A wildcard socket would take the
    port on the VIP away from HAProxy on the same host, so /etc/default/<init NAME> resets
    DAEMON_ARGS to `--ini <file>` alone and the ini names the node's own address and the process count.
    """

    unit: str
    init_name: str
    ini: str
    port: int
    lines: tuple[tuple[str, str], ...]
    min_processes: int = 2
    """With one thread per process (see debian_uwsgi), a second process keeps the API (and HAProxy's
    check of it) answering while the first one serves a slow request."""

    @property
    def default_file(self) -> str:
        return f"/etc/default/{self.init_name}"

    @property
    def dropin(self) -> str:
        return restart_dropin(self.unit)


def debian_uwsgi(name: str, user: str, app: tuple[str, str], log: str, *, threads: int = 1,
                 plugins: str = "python3", rem_header: bool = True,
                 extra: tuple[tuple[str, str], ...] = ()) -> tuple[tuple[str, str], ...]:
    """The settings of Debian's shipped ini (processes aside), in its order, with two changes:

    - `threads = 1` where Debian ships 32. These apps use eventlet primitives (oslo.messaging,
      oslo.service, the memcache pools); run from several OS threads of one process they end in
      `greenlet.error: cannot switch to a different thread` and a deadlocked worker that accepts
      nothing more (seen in the lab on neutron-api and cinder-api, with the listen queue full). One
      thread per process and at least two processes (Uwsgi.min_processes) is the safe shape.
    - `need-app` (see UWSGI_DROPIN)."""
    head = (("buffer-size", "65535"),) + ((("rem-header", "Content-Length"),) if rem_header else ()) + (
        ("master", "true"), ("thunder-lock", "true"), ("plugins", plugins))
    tail = (("lazy-apps", "true"), ("paste-logger", "true"), ("no-orphans", "true"), ("die-on-term", "true"),
            ("enable-threads", "true"), ("threads", str(threads)), ("listen", "100"), ("need-app", "true"))
    own = (("logto", log), ("name", name), ("uid", user), ("gid", user), ("chdir", f"/var/lib/{user}"), app)
    return head + tail + extra + own


UWSGI_RESTART_S = 5
UWSGI_DROPIN = f"""# {HEADER}
# uWSGI runs with need-app: an app that fails to load (its database or Keystone away at that
# moment) ends the process instead of leaving it up and answering 500 for ever. Debian's unit
# restarts only on failure and uWSGI's "no app loaded" exit counts as success, so restart always,
# without a start limit, until the app loads.
[Unit]
StartLimitIntervalSec=0

[Service]
Restart=always
RestartSec={UWSGI_RESTART_S}
"""


DAEMON_RESTART_S = 5
DAEMON_DROPIN = f"""# {HEADER}
# Debian's unit restarts on failure with systemd's default start limit (5 starts in 10 s, then the
# unit stays failed). A daemon that meets its database or broker away (a whole-cluster power loss,
# a controller booting before its peers) must come back on its own once they are there, however
# long that takes: restart always, every {DAEMON_RESTART_S} s, without a start limit. `hastack recover all`
# also starts any unit still stopped at its end (seen in CI, 2026-12-05: cinder-scheduler stayed
# stopped on one controller after every controller lost power).
[Unit]
StartLimitIntervalSec=0

[Service]
Restart=always
RestartSec={DAEMON_RESTART_S}
"""


def restart_dropin(unit: str) -> str:
    return f"/etc/systemd/system/{unit}.service.d/hastack-restart.conf"


def daemon_dropins(units: Iterable[str], *apis: Uwsgi) -> list[File]:
    """The restart drop-in of every unit that is not one of the uWSGI `apis` (those have theirs)."""
    served = {a.unit for a in apis}
    return [File(restart_dropin(u), DAEMON_DROPIN, restarts=(u,)) for u in units if u not in served]


def uwsgi_files(spec: Uwsgi, node: Node, workers: int) -> list[File]:
    lines = [("http-socket", f"{node.address}:{spec.port}"), ("processes", str(max(workers, spec.min_processes))),
             *spec.lines]
    body = "".join(f"{k} = {v}\n" for k, v in lines)
    ini_text = f"# {HEADER}\n[uwsgi]\n{body}"
    default = (f"# {HEADER}\n"
               f"# Debian's init script would add --http-socket :{spec.port} (every address, the VIP's\n"
               f"# too);"
               f" the socket and process count come from {spec.ini} alone.\n"
               f'DAEMON_ARGS="--ini {spec.ini}"\n')
    restarts = (spec.unit,)
    return [File(spec.ini, ini_text, restarts=restarts), File(spec.default_file, default, restarts=restarts),
            File(spec.dropin, UWSGI_DROPIN, restarts=restarts)]


# -- deploy: schema steps ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SyncStep:
    """One schema command, run once on ONE controller (through the VIP, so on the Galera writer) as
    the service's own system user, after the databases and grants exist and before any unit of the
    service starts. `ok_codes`: exit codes that mean "already done"."""

    service: ServiceName
    user: str
    argv: tuple[str, ...]
    ok_codes: tuple[int, ...] = (0,)


CELL0_DB = "{scheme}://{username}:{password}@{hostname}/nova_cell0"
CELL1_DB = "{scheme}://{username}:{password}@{hostname}/{path}"
"""Nova's cell mappings (rows in nova_api) name each cell's database. Written literally they would
hold a login and never follow the configuration: a rotation (`components/logins.py`) would leave
every Nova process that reads them on the previous login. As templates, each process fills them in
from its own [database] connection (Nova's cell URL templates): cell0 is its `nova_cell0`, cell1
the `nova` database itself. Cell1's transport URL has no such form for several brokers (only
numbered hosts), so it is the literal URL of nova.conf, and the openstack stage updates it from there
when the login or the brokers change (`OpenStackStage.cell_mappings`)."""

_SYNC: dict[ServiceName, tuple[tuple[str, tuple[str, ...], tuple[int, ...]], ...]] = {
    "keystone": (("keystone", ("keystone-manage", "db_sync"), (0,)),),
    "glance": (("glance", ("glance-manage", "db_sync"), (0,)),),
    "placement": (("placement", ("placement-manage", "db", "sync"), (0,)),),
    "nova": (("nova", ("nova-manage", "api_db", "sync"), (0,)),
             ("nova", ("nova-manage", "cell_v2", "map_cell0", "--database_connection", CELL0_DB), (0,)),
             # exit 2: a cell with this transport URL and database already exists.
             ("nova", ("nova-manage", "cell_v2", "create_cell", "--name", "cell1",
                       "--database_connection", CELL1_DB), (0, 2)),
             ("nova", ("nova-manage", "db", "sync"), (0,))),
    "neutron": (("neutron", ("neutron-db-manage", "--config-file", "/etc/neutron/neutron.conf",
                             "--config-file", "/etc/neutron/plugins/ml2/ml2_conf.ini", "upgrade", "head"), (0,)),),
    "cinder": (("cinder", ("cinder-manage", "db", "sync"), (0,)),),
    "heat": (("heat", ("heat-manage", "db_sync"), (0,)),),
    "telemetry": (("gnocchi", ("gnocchi-upgrade",), (0,)), ("aodh", ("aodh-dbsync",), (0,))),
}


def db_sync_steps(topo: Topology) -> list[SyncStep]:
    """Schema commands in deploy order (keystone first: the others need nothing from it to sync,
    but deploy bootstraps keystone right after its own sync)."""
    order: tuple[ServiceName, ...] = ("keystone", "glance", "placement", "nova", "neutron", "cinder", "heat",
                                      "telemetry")
    return [SyncStep(s, user, argv, ok) for s in order if topo.runs(s) for user, argv, ok in _SYNC[s]]
