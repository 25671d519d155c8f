"""Telemetry (only when `telemetry` is in openstack.services): ceilometer agents, Gnocchi
(metric API + metricd) and Aodh (alarming) on every controller; ceilometer's compute agent on
libvirt computes (the lab's fake driver has nothing for it to inspect).

Messaging: every service publishes notifications to the `telemetry` vhost (see
openstack.notifications); ceilometer's notification agent consumes them there, and ceilometer and
aodh use the same vhost and account for their own traffic (the broker defines one per service).

Not highly available yet, and said plainly:
- Gnocchi's `file` storage is per controller (like Glance's file store): measures written through
  one controller are not on the others. So HAProxy sends Gnocchi's API to one controller at a time
  (the others are backups, like the Galera writer): reads see what was written while that node
  serves. When it dies, the survivor takes new measures at once (the indexer, i.e. resources and
  metrics, is in Galera and complete), but the dead node's measures are out of reach until it
  returns. A real deployment needs shared storage (Ceph, S3, Swift, or this directory on NFS).
  Every controller's storage directory is initialised by deploy (`gnocchi-upgrade --skip-index`).
- No tooz coordination backend is configured: every controller's central polling agent polls
  every resource (duplicate samples) and every aodh evaluator evaluates every alarm (duplicate
  notifications). Nothing is lost when a controller dies, but partitioning the work needs a group
  membership backend (redis, etcd, zookeeper) that the topology does not deploy.
"""

from __future__ import annotations

from hastack.agents.api_watchdog import LogGuard
from hastack.components import openstack as os_
from hastack.components import rabbitmq
from hastack.components.base import HEADER, Ctx, File
from hastack.topology.model import Node, Topology

CEILOMETER = "/etc/ceilometer/ceilometer.conf"
GNOCCHI = "/etc/gnocchi/gnocchi.conf"
AODH = "/etc/aodh/aodh.conf"
GNOCCHI_PORT = 8041
AODH_PORT = 8042
CEILOMETER_UNITS = ("ceilometer-agent-central", "ceilometer-agent-notification")
GNOCCHI_UNITS = ("gnocchi-api", "gnocchi-metricd")
AODH_UNITS = ("aodh-api", "aodh-evaluator", "aodh-notifier", "aodh-listener")
COMPUTE_UNIT = "ceilometer-agent-compute"
STORAGE_DIR = "/var/lib/gnocchi"
STORAGE_MARKER = f"{STORAGE_DIR}/tmp/gnocchi-config"
"""What gnocchi-upgrade leaves in a file storage once its sacks exist (gnocchi.incoming.file)."""
STORAGE_INIT = ("gnocchi-upgrade", "--skip-index", "--skip-archive-policies-creation")
"""Initialise this node's storage and incoming sacks only (the indexer is the schema step's)."""
RESOURCE_TYPES = ("ceilometer-upgrade",)
"""Creates or updates ceilometer's resource types in Gnocchi (through the catalog, as ceilometer)."""
RESOURCE_TYPES_PACKAGE = "python3-ceilometer"
NOTIFICATION_UNIT = "ceilometer-agent-notification"
WAIT_DROPIN = f"/etc/systemd/system/{NOTIFICATION_UNIT}.service.d/hastack-wait-for-apis.conf"
WAIT_SCRIPT = "/usr/local/sbin/hastack-ceilometer-wait"
WAIT_S = 600
PIPELINE = "/etc/ceilometer/pipeline.yaml"
EVENT_PIPELINE = "/etc/ceilometer/event_pipeline.yaml"
NOTIFICATION_LOG = f"/var/log/ceilometer/{NOTIFICATION_UNIT}.log"
PUBLISHER_FAILED = "Unable to load publisher"
"""What the notification agent logs when a publisher failed at start; it never retries (see
wait_dropin). The API watchdog restarts the agent when its running process logged it."""


def log_guards(topo: Topology) -> list[LogGuard]:
    if not topo.runs("telemetry"):
        return []
    return [LogGuard(NOTIFICATION_UNIT, NOTIFICATION_LOG, PUBLISHER_FAILED)]

GNOCCHI_API = os_.Uwsgi(
    unit="gnocchi-api", init_name="gnocchi-api", ini="/etc/gnocchi/gnocchi-api-uwsgi.ini", port=GNOCCHI_PORT,
    lines=os_.debian_uwsgi("gnocchi-api", "gnocchi", ("wsgi", "gnocchi.rest.wsgi"),
                           "/var/log/gnocchi/gnocchi-api.log", rem_header=False,
                           extra=(("add-header", "Connection: close"),)),
)
AODH_API = os_.Uwsgi(
    unit="aodh-api", init_name="aodh-api", ini="/etc/aodh/aodh-api-uwsgi.ini", port=AODH_PORT,
    lines=os_.debian_uwsgi("aodh-api", "aodh", ("wsgi-file", "/usr/share/aodh-common/app.wsgi"),
                           "/var/log/aodh/aodh-api.log",
                           extra=(("add-header", "Connection: close"),
                                  ("paste", "config:/etc/aodh/api-paste.ini"))),
)


def _messaging(ctx: Ctx) -> os_.Sections:
    """RPC and notifications on the telemetry vhost: ceilometer's pollsters and aodh's evaluator notify
    through their DEFAULT transport, with the same bounded retry as every other notifier."""
    return os_.merge({"DEFAULT": {"transport_url": rabbitmq.transport_url(ctx, "telemetry"),
                                  "rpc_response_timeout": ctx.topo.tuning.rabbitmq.rpc_response_timeout}},
                     os_.rabbit_options(ctx.topo),
                     {"oslo_messaging_notifications": {"retry": os_.NOTIFICATION_RETRY}})


def _credentials(ctx: Ctx, user: str) -> os_.Sections:
    return {"service_credentials": os_.client_section(ctx, user, interface="internalURL")}


def ceilometer_conf(ctx: Ctx) -> os_.Sections:
    return os_.merge(_messaging(ctx), _credentials(ctx, "ceilometer"),
                     {"notification": {"workers": ctx.topo.openstack.api_workers}})


def gnocchi_conf(ctx: Ctx) -> os_.Sections:
    return os_.merge(
        {"api": {"auth_mode": "keystone"}},
        {"indexer": {"url": os_.db_url(ctx, "gnocchi", "gnocchi")}},
        os_.keystone_authtoken(ctx, "gnocchi"),
        {"metricd": {"workers": ctx.topo.openstack.api_workers}},
        {"storage": {"driver": "file", "file_basepath": STORAGE_DIR}},
    )


def aodh_conf(ctx: Ctx) -> os_.Sections:
    workers = ctx.topo.openstack.api_workers
    return os_.merge(
        _messaging(ctx),
        os_.database(ctx, "aodh", "aodh"),
        {section: {"workers": workers} for section in ("evaluator", "listener", "notifier")},
        os_.keystone_authtoken(ctx, "aodh"),
        _credentials(ctx, "aodh"),
    )


def wait_dropin() -> str:
    """Why ceilometer's notification agent waits for Keystone and Gnocchi before it starts.

    The agent builds its Gnocchi publisher once, when it starts, and that asks Keystone for a token.
    If Keystone does not answer then, ceilometer logs "Unable to load publisher gnocchi://" and runs
    on with a sink that has no publisher: every sample is consumed from RabbitMQ and dropped, for the
    life of the process, with nothing else in the log. Seen in the four-server lab (2026-12-04): both
    controllers' agents started while their own node was booting (the VIP's Keystone timed out on the
    loaded host), and no sample reached Gnocchi again until they were restarted. So the unit starts
    the agent only once Keystone and Gnocchi answer through the VIP; a wait that runs out fails the
    start, and Restart=on-failure tries again. The wait narrows the window but cannot close it: in
    CI the agent passed it and Keystone timed out 34 s later, while the agent was still loading its
    pipelines on the booting node. The API watchdog's log guard (log_guards) restarts that run."""
    return (f"# {HEADER}\n[Service]\nExecStartPre={WAIT_SCRIPT}\nTimeoutStartSec={WAIT_S + 60}\n"
            "RestartSec=10\n")


def wait_script(ctx: Ctx) -> str:
    """The VIP is a validated IPv4 address and the ports are constants: nothing here comes from text."""
    urls = " ".join(ctx.topo.vip_url(port, path) for port, path in
                    ((os_.KEYSTONE_PORT, "/v3"), (GNOCCHI_PORT, "/healthcheck")))
    return (f"#!/bin/sh\n# {HEADER}\n"
            f"# Until Keystone and Gnocchi answer through the VIP (see {WAIT_DROPIN}); at most {WAIT_S} s.\n"
            f"end=$(( $(date +%s) + {WAIT_S} ))\n"
            "while :; do\n"
            "    ok=1\n"
            f"    for u in {urls}; do\n"
            "        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -- \"$u\") || code=000\n"
            "        [ \"$code\" = 200 ] || { ok=0; break; }\n"
            "    done\n"
            "    [ $ok = 1 ] && exit 0\n"
            "    if [ \"$(date +%s)\" -ge \"$end\" ]; then echo \"still no answer from $u ($code)\" >&2; exit 1; fi\n"
            "    sleep 2\n"
            "done\n")


PUBLISHER_TIMEOUT_S = 30
"""How long ceilometer's Gnocchi publisher waits for an answer (ceilometer's default: 6.05 s).

The publisher sends each batch once: a request that times out is logged and its samples are
dropped, never retried. With one controller left in the four-server figure, that controller's
Gnocchi answered a batch in 4.1-5.0 s while a server was being built (HAProxy's log, 2026-12-07), and
its APIs answer in up to 9.6 s during the other controller's cold start (README, "Where the time
goes"): the default timeout drops samples exactly when one server carries the cloud. 30 s is
above every answer measured there and far below HAProxy's `timeout server` (90 s); a batch that
waits holds its worker, and the notifications wait in their quorum queue meanwhile, unacknowledged."""

GNOCCHI_PUBLISHER = f"gnocchi://?timeout={PUBLISHER_TIMEOUT_S}"


def pipeline_yaml(kind: str, why: str) -> str:
    """One ceilometer pipeline file (`kind`: meter or event): every item of that kind to Gnocchi."""
    return (f"# {HEADER}\n{why}---\nsources:\n    - name: {kind}_source\n      {kind}s:\n          - \"*\"\n"
            f"      sinks:\n          - {kind}_sink\nsinks:\n    - name: {kind}_sink\n      publishers:\n"
            f"          - {GNOCCHI_PUBLISHER}\n")


PIPELINE_YAML = pipeline_yaml("meter", (
    "# Ceilometer's own meter pipeline (every meter to Gnocchi) with a longer publisher timeout\n"
    f"# ({PUBLISHER_TIMEOUT_S} s, see hastack.components.telemetry.PUBLISHER_TIMEOUT_S).\n"))
EVENT_PIPELINE_YAML = pipeline_yaml("event", (
    "# Events go to Gnocchi (resource ends, e.g. a deleted image), not to the `event.sample` queue that\n"
    "# Debian's default names: nothing consumes that queue (Panko is gone), so it would only grow.\n"))


def _on_compute(topo: Topology, node: Node) -> bool:
    return node.has("compute") and topo.runs("nova") and topo.openstack.compute_driver == "libvirt"


class Telemetry:
    name = "telemetry"

    def applies(self, topo: Topology, node: Node) -> bool:
        return topo.runs("telemetry") and (node.has("controller") or _on_compute(topo, node))

    def packages(self, topo: Topology, node: Node) -> list[str]:
        return self.units(topo, node)

    def units(self, topo: Topology, node: Node) -> list[str]:
        out = [*CEILOMETER_UNITS, *GNOCCHI_UNITS, *AODH_UNITS] if node.has("controller") else []
        return out + ([COMPUTE_UNIT] if _on_compute(topo, node) else [])

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        ceilo = [u for u in self.units(ctx.topo, node) if u.startswith("ceilometer")]
        out = [os_.config_file(CEILOMETER, ceilometer_conf(ctx), "ceilometer", ceilo)]
        if node.has("controller"):
            notify = (NOTIFICATION_UNIT,)
            out += [File(WAIT_DROPIN, wait_dropin(), restarts=notify),
                    File(WAIT_SCRIPT, wait_script(ctx), mode=0o755),
                    *(File(path, text, group="ceilometer", mode=0o640, restarts=notify)
                      for path, text in ((PIPELINE, PIPELINE_YAML), (EVENT_PIPELINE, EVENT_PIPELINE_YAML)))]
            workers = ctx.topo.openstack.api_workers
            out += [os_.config_file(GNOCCHI, gnocchi_conf(ctx), "gnocchi", GNOCCHI_UNITS),
                    *os_.uwsgi_files(GNOCCHI_API, node, workers),
                    os_.config_file(AODH, aodh_conf(ctx), "aodh", AODH_UNITS),
                    *os_.uwsgi_files(AODH_API, node, workers)]
        return out + os_.daemon_dropins(self.units(ctx.topo, node), GNOCCHI_API, AODH_API)


COMPONENT = Telemetry()
