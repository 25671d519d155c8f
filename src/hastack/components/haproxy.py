"""HAProxy on every controller: the OpenStack APIs and the Galera writer, on the VIP.

Why it looks like this:
- Every controller binds the VIP (and the public VIP, if any) with `net.ipv4.ip_nonlocal_bind=1`,
  so a VIP move is only keepalived's business: HAProxy never restarts for it.
- Backends are every controller's own address. Each API check asks the service itself for a page
  that needs no token and expects its real status (`APIS` below); a bare TCP check would keep
  a crashed WSGI app that still holds its port in the pool.
- Galera is a single writer: the first controller, the others `backup` (HAProxy uses only the first
  healthy backup). Its check is the node's HTTP Galera check on port 9200 (see galera.py), so a
  node that is Joining, Donor under rsync or non-Primary takes no writes. `on-marked-down
  shutdown-sessions` cuts clients off a failed writer at once (they reconnect to the next), and
  `on-marked-up shutdown-backup-sessions` moves them back when the first node returns, so two
  writers never run side by side (that would trade failover for certification conflicts).
- TLS (`network.tls`, the default): every API listener and the stats page terminate TLS with the
  certificate of the cluster's own CA (pki.py) and set `X-Forwarded-Proto`, so the services'
  version documents link to https. Backends stay plain HTTP on the management network: the
  controllers' own addresses, which only the cluster's nodes reach.
- A `stats` listener on the node's own address serves `/stats` (user `hastack`, secret
  `haproxy/stats`) and `monitor-uri /healthz`, which keepalived's track script probes. /healthz
  reports this HAProxy alive, not its backends: every controller sees the same backends, so their
  state cannot tell which node should hold the VIP.
"""

from __future__ import annotations

from dataclasses import dataclass

from hastack.components import galera, telemetry
from hastack.components.base import Ctx, File, template
from hastack.topology.model import Node, ServiceName, Topology

CONF = "/etc/haproxy/haproxy.cfg"
CERT = "/etc/haproxy/hastack.pem"
"""The VIP's certificate and key (pki.py), 0600 root: HAProxy reads it as root before it drops
privileges, on every start and reload."""
SYSCTL = "/etc/sysctl.d/60-hastack-haproxy.conf"
STATS_PORT = 8404
MONITOR_URI = "/healthz"
STATS_USER = "hastack"
STATS_SECRET = "haproxy/stats"
MAXCONN = 4096
"""HAProxy needs about two file descriptors per connection and refuses to start when it cannot
raise its limit that far: 4096 (~8.2k fds) fits the 20000 hard limit lab nodes inherit here, and is
plenty for a control plane's API and database traffic."""
CHECK_TIMEOUT_MS = 2000
# Above the check script's own MariaDB timeout, so a hung server yields its 503, not a check timeout.
GALERA_PROXY = "galera"
"""The listener for SQL (templates/haproxy: `listen galera`): one writer, the others backups."""
GALERA_CHECK_TIMEOUT_MS = (galera.CHECK_DB_TIMEOUT_S + 1) * 1000
UNIT = "haproxy"


@dataclass(frozen=True)
class Api:
    """One load-balanced API: listener name, port, and the page its check asks for."""

    name: str
    service: ServiceName
    port: int
    check_uri: str
    status: int
    title: str
    public: bool = True
    """Also bound on the public VIP (the metadata API is for the network nodes only)."""
    unit: str = ""
    """The systemd unit that serves it on each controller (its log: /var/log/<log_dir>/<unit>.log)."""
    log_dir: str = ""
    """The project's log directory where it is not the service's name (telemetry is gnocchi and aodh)."""
    one_node: bool = False
    """Served by the first healthy controller only, the others as backups (like the Galera writer):
    for an API whose data lives on the node that received it (Gnocchi's file storage)."""

    @property
    def log(self) -> str:
        return f"/var/log/{self.log_dir or self.service}/{self.unit}.log"


# Check pages, read from the Zed packages' own paste pipelines and apps: oslo.middleware's
# `/healthcheck` answers 200 without a token wherever it is mounted at the root (and, where a
# `disable_by_file` backend is configured, `touch /etc/<svc>/healthcheck_disable` drains a node).
# nova's compute API mounts it only inside its versioned pipelines and placement has none: there
# the unauthenticated version document (`/`, 200) is asked instead. Gnocchi and Aodh (bookworm's
# 4.4.2 and 15.0.0) mount `/healthcheck` in every auth mode's urlmap, beside `/`.
APIS: tuple[Api, ...] = (
    Api("keystone", "keystone", 5000, "/healthcheck", 200, "Keystone identity API", unit="keystone"),
    Api("glance_api", "glance", 9292, "/healthcheck", 200, "Glance image API", unit="glance-api"),
    Api("placement_api", "placement", 8778, "/", 200, "Placement API", unit="placement-api"),
    Api("nova_api", "nova", 8774, "/", 200, "Nova compute API", unit="nova-api"),
    Api("nova_metadata", "nova", 8775, "/healthcheck", 200, "Nova metadata API", public=False,
        unit="nova-api-metadata"),
    Api("neutron_server", "neutron", 9696, "/healthcheck", 200, "Neutron network API", unit="neutron-api"),
    Api("cinder_api", "cinder", 8776, "/healthcheck", 200, "Cinder block storage API", unit="cinder-api"),
    Api("heat_api", "heat", 8004, "/healthcheck", 200, "Heat orchestration API", unit="heat-api"),
    Api("heat_api_cfn", "heat", 8000, "/healthcheck", 200, "Heat CloudFormation-compatible API",
        unit="heat-api-cfn"),
    Api("gnocchi_api", "telemetry", telemetry.GNOCCHI_PORT, "/healthcheck", 200, "Gnocchi metric API",
        unit=telemetry.GNOCCHI_API.unit, log_dir="gnocchi", one_node=True),
    Api("aodh_api", "telemetry", telemetry.AODH_PORT, "/healthcheck", 200, "Aodh alarming API",
        unit=telemetry.AODH_API.unit, log_dir="aodh"),
)


@dataclass(frozen=True)
class Listener:
    api: Api
    binds: list[str]
    forwardfor: str


def apis(topo: Topology) -> list[Api]:
    """The APIs of the services this topology runs (and only those)."""
    return [a for a in APIS if topo.runs(a.service)]


def vips(topo: Topology, public: bool) -> list[str]:
    out = [str(topo.network.vip)]
    if public and topo.network.public is not None:
        out.append(str(topo.network.public.vip))
    return out


def listeners(topo: Topology) -> list[Listener]:
    # The metadata proxy on the network nodes already sets X-Forwarded-For (the instance's address):
    # HAProxy must not add a second one there.
    return [Listener(a, vips(topo, a.public), "forwardfor" if a.public else "forwardfor if-none")
            for a in apis(topo)]


HARD_STOP_AFTER_S = 60
"""After a reload the old process keeps serving the connections it holds until they close, and
OpenStack's database pools keep theirs for up to an hour, on the writer that process chose. A minute
lets the requests in flight finish; then those clients reconnect through the new process."""


def config(ctx: Ctx, node: Node) -> str:
    topo = ctx.topo
    h = topo.tuning.haproxy
    return template(
        "haproxy/haproxy.cfg.j2", node=node, h=h, maxconn=MAXCONN, vip=ctx.vip,
        stats_port=STATS_PORT, monitor_uri=MONITOR_URI, stats_user=STATS_USER,
        stats_password=ctx.secrets.password(STATS_SECRET), galera=topo.controllers,
        check_port=galera.CHECK_PORT, check_timeout_ms=max(CHECK_TIMEOUT_MS, h.check_inter_ms),
        galera_check_timeout_ms=GALERA_CHECK_TIMEOUT_MS, listeners=listeners(topo),
        controllers=topo.controllers, tls=topo.network.tls, scheme=topo.api_scheme,
        ssl=f" ssl crt {CERT}" if topo.network.tls else "", hard_stop_after_s=HARD_STOP_AFTER_S,
    )


class HAProxy:
    name = "haproxy"

    def applies(self, topo: Topology, node: Node) -> bool:
        return node.has("controller")

    def packages(self, topo: Topology, node: Node) -> list[str]:
        return ["haproxy"]

    def units(self, topo: Topology, node: Node) -> list[str]:
        return [UNIT]

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        return [
            File(CONF, config(ctx, node), group="haproxy", mode=0o640, secret=True, restarts=(UNIT,)),
            *([File(CERT, ctx.tls.haproxy_pem, mode=0o600, secret=True, restarts=(UNIT,))]
              if ctx.topo.network.tls else []),
            # systemd-sysctl re-applies /etc/sysctl.d; HAProxy then binds addresses it does not hold.
            File(SYSCTL, template("haproxy/60-hastack-haproxy.conf.j2"), restarts=("systemd-sysctl", UNIT)),
        ]


COMPONENT = HAProxy()
