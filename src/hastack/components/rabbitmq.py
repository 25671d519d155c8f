"""RabbitMQ on every controller (+ a non-controller arbitrator): one cluster, formed from the config
file, users from definitions.

Choices and why:
- Cluster formation is `classic_config` with every broker as `rabbit@<name>`; names resolve
  through the /etc/hosts that `common` renders, so no DNS is needed. Nodes must start together
  (a node started alone waits for its peers, then gives up).
- Users, vhosts and permissions are a definitions file that every node loads at boot
  (`load_definitions`), not `rabbitmqctl` calls from deploy: the broker converges on its own at
  every start, deploy has nothing to replay, and because definitions are configured RabbitMQ never
  seeds its default account (there is no guest user). Passwords appear only as RabbitMQ's salted
  SHA-256 hashes; the 4-byte salt is derived from the user name and password, so a render is
  byte-for-byte repeatable and changes exactly when the password changes. A changed file restarts
  no broker: deploy imports it on one running broker (`rabbitmqctl import_definitions`, which adds
  and updates and never removes), so a new service's vhost or a rotation's second login reaches the
  cluster without a broker restart, whose reconnecting clients would meet the new state half-done.
- One vhost per OpenStack service, named after the service (`nova`), and one user per service with
  full rights on its own vhost only. In a transport URL the vhost is the path: `.../nova`
  (`transport_url()` builds it); the shared convention's "vhost `/<service>`" is that URL path, the
  vhost's name has no slash (a vhost literally named `/nova` would need `...//nova`). The admin
  user `hastack` (secret `rabbit/admin`) has rights on every vhost.
- The brokers are the controllers plus a broker on any 'arbitrator' that is not a controller (the
  seed's four-server layout: net-1). A quorum queue of two members stops
  with either, so that third broker is what keeps RPC serving through a controller's loss. It holds
  quorum-queue replicas and votes, but services do NOT list it in `transport_url`: like garbd for
  Galera it is a vote, not a server for clients. Queue leaders follow the declaring client
  (`client-local`), so they stay on the controllers that are sized for the load; the network node
  keeps its CPU for the agents whose failover it must run. Only after a controller dies may Raft
  elect the arbitrator leader of some queues; clients reach them through their own broker.
- `rabbitmq.queues: quorum` (default): OpenStack RPC uses quorum queues (oslo.messaging
  `rabbit_quorum_queue = true`) and a classic mirrored-queue policy must never match those; one
  policy mirrors oslo.messaging's classic reply and fanout queues only (see TRANSIENT_QUEUES).
  Per-vhost default queue types do not exist in 3.10 (they came in 3.11).
  `rabbitmq.queues: mirrored`: the seed's classic mirrored queues, a policy `ha-mode: all`,
  `ha-sync-mode: automatic` on every vhost (validate warns about their known losses).
- The Erlang cookie is one secret, identical on every controller, 0400 rabbitmq:rabbitmq.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from hastack.components import logins
from hastack.components.base import HEADER, Ctx, File, template
from hastack.topology.model import Node, RabbitMQTuning, ServiceName, Topology

CONF = "/etc/rabbitmq/rabbitmq.conf"
PEERS_CONF = "/etc/rabbitmq/conf.d/20-hastack-peers.conf"
"""RabbitMQ (3.9 and later) reads every file of /etc/rabbitmq/conf.d after rabbitmq.conf."""
ENV_CONF = "/etc/rabbitmq/rabbitmq-env.conf"
TICKTIME_DROPIN = "/etc/systemd/system/rabbitmq-server.service.d/hastack-net-ticktime.conf"


def ticktime_dropin(t: RabbitMQTuning) -> str:
    """RabbitMQ 3.10 starts Erlang distribution itself, before it reads rabbitmq.conf and with a
    fixed tick: neither `net_ticktime` in rabbitmq.conf nor `-kernel net_ticktime` on the VM's
    command line takes effect (measured: 60 s either way; rabbitmq-server issue 2377). So the unit
    sets it on the running node once it is ready. `set_net_ticktime/1` moves there over a 60 s
    transition, so peers restarted one by one never disagree abruptly. A failure to set it must not
    fail the broker (the leading `-`); the lab tier checks the value in effect."""
    return (f"# {HEADER}\n[Service]\n"
            f'ExecStartPost=-/usr/sbin/rabbitmqctl eval "net_kernel:set_net_ticktime({t.net_ticktime})."\n')


BOOT_DROPIN = "/etc/systemd/system/rabbitmq-server.service.d/hastack-boot.conf"
DROP_STALE = "/usr/local/sbin/hastack-rabbitmq-drop-stale"
START_TIMEOUT_S = 120
"""Debian's unit allows 600 s. A boot that is not done in 120 s is stuck (see boot_dropin), and every
OpenStack unit on the controller is ordered after this one (Debian's units say
After=rabbitmq-server.service), so a stuck boot also keeps Keystone and the others from starting."""


def boot_dropin() -> str:
    """Why a broker's boot can hang, and the two guards against it.

    After a power cut the peers still hold a distribution connection to the node's previous run
    (nothing closed it; Erlang notices only after net_ticktime). When the node boots again and
    connects, RabbitMQ 3.10.8's "global hang workaround" finds the peers' `global` state broken and
    its repair messages are ignored by Erlang/OTP 25.1+ (rabbitmq-server issue 6034, fixed in later
    3.10 releases): the boot stops for good after "Peer discovery ... skipping registration". Seen in
    the lab (2026-12-04) on a power-cycled controller: rabbitmq-server `activating` for 10 minutes,
    and keystone, ordered after it, never started (HAProxy: keystone DOWN L4CON). A restart of the
    broker booted in 9 s.
    - ExecStartPre asks every peer to drop its connection to this node's previous run first
      (`erlang:disconnect_node/1` on the peer): the peers see the old run go down at once, as they
      would after net_ticktime, and the new run joins cleanly. A peer that does not answer (down,
      or away) costs at most the script's 10 s and never fails the start.
    - TimeoutStartSec bounds any boot that hangs anyway: systemd stops it and Restart=on-failure
      starts it again 10 s later."""
    return f"# {HEADER}\n[Service]\nTimeoutStartSec={START_TIMEOUT_S}\nExecStartPre=-{DROP_STALE}\n"


def drop_stale_script(topo: Topology, node: Node) -> str:
    """Node names are topology host names (validated: [a-z0-9-]), safe inside the quotes."""
    peers = " ".join(nodename(n) for n in topo.brokers if n.name != node.name)
    return (f"#!/bin/sh\n# {HEADER}\n"
            "# Before this broker boots: every peer drops its connection to this node's previous run\n"
            f"# (see {BOOT_DROPIN}). Runs as the rabbitmq user (the unit's), with its cookie.\n"
            f"for peer in {peers}; do\n"
            f"    timeout 10 rabbitmqctl -q -n \"$peer\" eval \"erlang:disconnect_node('{nodename(node)}').\" "
            ">/dev/null 2>&1 &\n"
            "done\nwait\nexit 0\n")


PLUGINS = "/etc/rabbitmq/enabled_plugins"
DEFINITIONS = "/etc/rabbitmq/definitions.json"
COOKIE = "/var/lib/rabbitmq/.erlang.cookie"
DATA_DIR = "/var/lib/rabbitmq/mnesia"
"""Where Debian's broker keeps its database: a directory per node name, made at its first boot."""
AMQP_PORT = 5672
MANAGEMENT_PORT = 15672
ADMIN_USER = "hastack"
DRILLS_VHOST = "drills"
ADMIN_SECRET = "rabbit/admin"
COOKIE_SECRET = "rabbit/cookie"
HASHING = "rabbit_password_hashing_sha256"
UNIT = "rabbitmq-server"
# placement is the one service without oslo.messaging.
NO_MESSAGING: frozenset[ServiceName] = frozenset({"placement"})


def nodename(node: Node) -> str:
    return f"rabbit@{node.name}"


def messaging_services(topo: Topology) -> list[ServiceName]:
    """Services that get a RabbitMQ user and vhost, in topology order, each once."""
    out: list[ServiceName] = []
    for s in topo.openstack.services:
        if s not in NO_MESSAGING and s not in out:
            out.append(s)
    return out


def transport_url(ctx: Ctx, service: ServiceName) -> str:
    """oslo.messaging transport_url naming every broker (clients fail over between them)."""
    lg = logins.login(ctx.secrets, "rabbit", service)
    # every controller's broker, not an arbitrator's
    hosts = ",".join(f"{lg.user}:{lg.password}@{n.address}:{AMQP_PORT}" for n in ctx.topo.controllers)
    return f"rabbit://{hosts}/{service}"


def password_hash(user: str, password: str) -> str:
    """RabbitMQ's format: base64(salt + sha256(salt + password)), with a 4-byte salt.

    The salt is derived (not random) so renders are deterministic; it still differs per user and
    per password, which is all a salt is for here (the passwords are long random strings).
    """
    salt = hashlib.sha256(f"hastack-rabbitmq-salt\0{user}\0{password}".encode()).digest()[:4]
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _user(name: str, password: str, tags: list[str]) -> dict[str, Any]:
    return {"name": name, "password_hash": password_hash(name, password), "hashing_algorithm": HASHING,
            "tags": tags}


def _perm(user: str, vhost: str) -> dict[str, str]:
    return {"user": user, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}


MIRROR_POLICY = "ha-all"
TRANSIENT_POLICY = "ha-transient"
TRANSIENT_QUEUES = r"^(reply_|.+_fanout_)"
"""oslo.messaging's own classic queues: a caller's reply queue (`reply_<uuid>`) and each server's
fanout queue (`<topic>_fanout_<uuid>`). The RPC topic queues are quorum queues; these are not, so
they live on one broker only. When that broker dies, the survivors delete them once they see it go,
which can be after the client has reconnected elsewhere and declared its queue again: the client
then waits on a queue that no longer exists and every call it makes times out (nova-compute on
cmp-1, CI run of 2026-12-04: "The reply ... failed to send after 60 seconds due to a missing queue",
for ten minutes after a controller's power cycle). Mirrored on every broker, they survive it."""


INSTANCE_POLICY = "hastack-instance-queues"
INSTANCE_QUEUES = r"\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
"""Queues named for one process, `<topic>.<uuid>`: heat-engine serves `engine_worker.<engine id>` and
`heat-engine-listener.<engine id>` with an id drawn at each start. As RPC topics they are quorum
queues, durable, and nothing ever deletes them: the lab held 60 of them, none consumed, after two
hours of deploys and power cycles (2026-12-07); each is a Raft group on every broker, recovered and
caught up at every broker's return. The next process has another id, so a queue of this shape that
nobody consumes for INSTANCE_QUEUE_EXPIRES_MS is gone for good: RabbitMQ deletes it then (`expires`
counts only while the queue has no consumer, so a running engine keeps its queues)."""
INSTANCE_QUEUE_EXPIRES_MS = 1_800_000
"""30 minutes, oslo.messaging's own lifetime for its unused reply and fanout queues
(`rabbit_transient_queues_ttl`)."""
MIRRORED = {"ha-mode": "all", "ha-sync-mode": "automatic"}


def policies(topo: Topology, vhosts: list[str]) -> list[dict[str, Any]]:
    """With `queues: mirrored`, every queue but the server-named ones (`amq.*`) mirrored on every
    broker and synchronised automatically when a broker returns (RabbitMQ 3.10 classic mirroring).
    With quorum queues, only oslo.messaging's classic reply and fanout queues (see TRANSIENT_QUEUES);
    the pattern never matches a quorum queue's name. And in both, queues named for one process expire
    once unused (INSTANCE_QUEUES): RabbitMQ applies one policy per queue, the highest priority, so
    with mirroring that policy mirrors them too."""
    mirrored = topo.rabbitmq.queues == "mirrored"
    name, pattern = (MIRROR_POLICY, r"^(?!amq\.).*") if mirrored else (TRANSIENT_POLICY, TRANSIENT_QUEUES)
    instance = {"expires": INSTANCE_QUEUE_EXPIRES_MS, **(MIRRORED if mirrored else {})}
    return [p for v in vhosts for p in (
        {"vhost": v, "name": name, "pattern": pattern, "apply-to": "queues", "definition": dict(MIRRORED),
         "priority": 0},
        {"vhost": v, "name": INSTANCE_POLICY, "pattern": INSTANCE_QUEUES, "apply-to": "queues",
         "definition": instance, "priority": 1})]


def definitions(ctx: Ctx) -> dict[str, Any]:
    services = messaging_services(ctx.topo)
    users = [_user(ADMIN_USER, ctx.secrets.password(ADMIN_SECRET), ["administrator"])]
    perms = [_perm(ADMIN_USER, s) for s in services]
    for s in services:  # the service's login, and during a rotation the one it moves away from
        for lg in (logins.login(ctx.secrets, "rabbit", s), logins.previous(ctx.secrets, "rabbit", s)):
            if lg is not None:
                users.append(_user(lg.user, lg.password, []))
                perms.append(_perm(lg.user, s))
    # hastack's own vhost: drills publish and consume there, never in a service's vhost
    perms.append(_perm(ADMIN_USER, DRILLS_VHOST))
    names = [*services, DRILLS_VHOST]
    return {"users": users, "vhosts": [{"name": v} for v in names], "permissions": perms,
            "topic_permissions": [], "parameters": [], "global_parameters": [],
            "policies": policies(ctx.topo, names),
            "queues": [], "exchanges": [], "bindings": []}


def peers_conf(ctx: Ctx, node: Node) -> str:
    return template("rabbitmq/20-hastack-peers.conf.j2", nodename=nodename(node), cluster=ctx.topo.name,
                    peers=[nodename(n) for n in ctx.topo.brokers])


def conf(ctx: Ctx, node: Node) -> str:
    return template("rabbitmq/rabbitmq.conf.j2", node=node, nodename=nodename(node), cluster=ctx.topo.name,
                    peers_file=PEERS_CONF, t=ctx.topo.tuning.rabbitmq,
                    partition_handling=ctx.topo.partition_handling,
                    amqp_port=AMQP_PORT, management_port=MANAGEMENT_PORT, definitions=DEFINITIONS)


PEERS_UNIT = "hastack-rabbit-peers"
PEERS_UNIT_FILE = f"/etc/systemd/system/{PEERS_UNIT}.service"
PEERS_PROGRAM = "/usr/local/lib/hastack/rabbit-peers"
EPMD_PORT = 4369
PEERS_EVERY_S = 1.0


def peer_watch(topo: Topology) -> bool:
    """The dead-peer watch (agents/rabbit_peers.py, components/rabbit_watch.py) runs, on every node of
    `watch_nodes`: `dead_peer_after_s` above 0 (3 by default)."""
    return topo.tuning.rabbitmq.dead_peer_after_s > 0 and len(topo.brokers) > 1


def drops_peers(topo: Topology) -> bool:
    """Brokers drop a dead peer only where that is handled the way a tick timeout is: pause_minority.
    With autoheal or ignore both sides of a cut keep serving, and dropping sooner would only start that
    sooner. (The clients' cut runs whatever the partition handling: a silent broker's host serves no
    one.)"""
    return peer_watch(topo) and topo.partition_handling == "pause_minority"


def watch_nodes(topo: Topology) -> list[Node]:
    """Where the watch runs: every broker, and every node whose OpenStack services are AMQP clients."""
    return [n for n in topo.nodes if n in topo.brokers or any(n.has(r) for r in ("controller", "network", "compute"))]


def runs_watch(topo: Topology, node: Node) -> bool:
    """This node runs the watch: it is on, and the node is one of `watch_nodes`."""
    return peer_watch(topo) and node in watch_nodes(topo)


def peers_unit(topo: Topology, node: Node) -> str:
    """Each peer is probed on epmd's port: every broker's host runs epmd (Erlang's name service, which
    a peer must reach to connect at all). Node names are topology host names ([a-z0-9-]) and the
    addresses validated IPs: nothing in the command needs quoting."""
    t = topo.tuning.rabbitmq
    peers = " ".join(f"{nodename(n)}={n.address}" for n in topo.brokers if n.name != node.name)
    drop = "--drop " if node in topo.brokers and drops_peers(topo) else ""
    what = "drop a RabbitMQ peer whose host stopped answering, and cut" if drop else "cut"
    return (f"# {HEADER}\n"
            f"[Unit]\nDescription=hastack: {what} this host's connections to a RabbitMQ broker whose host "
            "stopped answering (rabbit_peers)\n"
            + (f"After={UNIT}.service\n" if node in topo.brokers else "")
            + "StartLimitIntervalSec=0\n\n"
            "[Service]\nType=simple\n"
            f"ExecStart=/usr/bin/python3 {PEERS_PROGRAM} {drop}--cut {AMQP_PORT} {t.dead_peer_after_s:g} "
            f"{PEERS_EVERY_S:g} {EPMD_PORT} {peers}\nRestart=always\nRestartSec=1\n\n"
            "[Install]\nWantedBy=multi-user.target\n")


class RabbitMQ:
    name = "rabbitmq"

    def applies(self, topo: Topology, node: Node) -> bool:
        return node in topo.brokers

    def packages(self, topo: Topology, node: Node) -> list[str]:
        return ["rabbitmq-server"]

    def units(self, topo: Topology, node: Node) -> list[str]:
        return [UNIT]

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        r = (UNIT,)
        env = template("rabbitmq/rabbitmq-env.conf.j2", node=node, nodename=nodename(node),
                       amqp_port=AMQP_PORT, t=ctx.topo.tuning.rabbitmq)
        defs = json.dumps(definitions(ctx), indent=2) + "\n"
        return [
            File(CONF, conf(ctx, node), restarts=r),
            File(PEERS_CONF, peers_conf(ctx, node)),  # read only to join: restarts nothing
            File(ENV_CONF, env, restarts=r),
            File(TICKTIME_DROPIN, ticktime_dropin(ctx.topo.tuning.rabbitmq), restarts=r),
            File(BOOT_DROPIN, boot_dropin(), restarts=r),
            File(DROP_STALE, drop_stale_script(ctx.topo, node), mode=0o755),
            File(PLUGINS, "[rabbitmq_management].\n", restarts=r),
            # loaded at boot; a change is imported live by the rabbitmq stage (above)
            File(DEFINITIONS, defs, group="rabbitmq", mode=0o640, secret=True),
            # Erlang reads the cookie verbatim: no trailing newline.
            File(COOKIE, ctx.secrets.password(COOKIE_SECRET), owner="rabbitmq", group="rabbitmq", mode=0o400,
                 secret=True, restarts=r),
        ]


COMPONENT = RabbitMQ()
