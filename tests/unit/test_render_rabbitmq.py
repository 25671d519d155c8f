"""RabbitMQ: one cookie everywhere, every broker in cluster formation, users from definitions with
real RabbitMQ password hashes, and no default account anywhere."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

from conftest import replace_node, watching
from hastack.components import rabbit_watch, rabbitmq
from hastack.components.base import Ctx, File
from hastack.drills.profiles import reference
from hastack.topology.model import Node, Topology

CtxOf = Callable[[Topology], Ctx]


def files(ctx: Ctx, node: Node) -> dict[str, File]:
    """The broker's files and its watch's (where they apply)."""
    return {f.path: f for comp in (rabbitmq.COMPONENT, rabbit_watch.COMPONENT) if comp.applies(ctx.topo, node)
            for f in comp.files(ctx, node)}


def conf(ctx: Ctx, node: Node) -> dict[str, str]:
    """rabbitmq.conf and hastack's conf.d file, merged as the broker reads them; a key set twice fails."""
    out = {}
    text = files(ctx, node)[rabbitmq.CONF].data.decode() + files(ctx, node)[rabbitmq.PEERS_CONF].data.decode()
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            assert key.strip() not in out, f"{key} set twice"
            out[key.strip()] = value.strip()
    return out


def defs(ctx: Ctx) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(files(ctx, ctx.topo.controllers[0])[rabbitmq.DEFINITIONS].data)
    return data


def hash_matches(password_hash: str, password: str) -> bool:
    raw = base64.b64decode(password_hash)
    salt, digest = raw[:4], raw[4:]
    return len(salt) == 4 and digest == hashlib.sha256(salt + password.encode()).digest()


def test_cookie_identical_and_private(seed: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(seed)
    cookies = [files(ctx, n)[rabbitmq.COOKIE] for n in seed.controllers]
    assert len({c.data for c in cookies}) == 1
    for c in cookies:
        assert (c.owner, c.group, c.mode, c.secret) == ("rabbitmq", "rabbitmq", 0o400, True)
        assert not c.data.endswith(b"\n")
        assert c.data.decode() == ctx.secrets.password("rabbit/cookie")


def test_cluster_formation_lists_every_controller(seed: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(seed)
    for node in seed.controllers:
        c = conf(ctx, node)
        peers = {v for k, v in c.items() if k.startswith("cluster_formation.classic_config.nodes.")}
        assert peers == {f"rabbit@{n.name}" for n in seed.controllers}
        assert c["cluster_formation.peer_discovery_backend"] == "rabbit_peer_discovery_classic_config"
        assert c["cluster_partition_handling"] == seed.partition_handling
        assert c["net_ticktime"] == str(seed.tuning.rabbitmq.net_ticktime)
        assert c["listeners.tcp.1"] == f"{node.address}:5672"
        assert c["management.tcp.ip"] == str(node.address)
        assert c["load_definitions"] == rabbitmq.DEFINITIONS


def test_env_names_the_node(seed: Topology, ctx_of: CtxOf) -> None:
    node = seed.controllers[1]
    env = files(ctx_of(seed), node)[rabbitmq.ENV_CONF].data.decode()
    assert "NODENAME=rabbit@ctl-2\n" in env
    assert f"NODE_IP_ADDRESS={node.address}\n" in env
    # the CLI tools tick like the brokers; the brokers get theirs from the unit's drop-in
    tick = seed.tuning.rabbitmq.net_ticktime
    assert f'CTL_ERL_ARGS="-kernel net_ticktime {tick}"\n' in env
    dropin = files(ctx_of(seed), node)[rabbitmq.TICKTIME_DROPIN]
    assert f'ExecStartPost=-/usr/sbin/rabbitmqctl eval "net_kernel:set_net_ticktime({tick})."\n' in dropin.data.decode()
    assert dropin.restarts == (rabbitmq.UNIT,)


def test_no_guest_anywhere(seed: Topology, four: Topology, ctx_of: CtxOf) -> None:
    for topo in (seed, four):
        ctx = ctx_of(topo)
        for node in topo.controllers:
            for f in files(ctx, node).values():
                assert b"guest" not in f.data.lower(), f.path


def test_user_and_vhost_per_messaging_service(seed: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(seed)
    d = defs(ctx)
    services = [s for s in seed.openstack.services if s != "placement"]
    assert [u["name"] for u in d["users"]] == ["hastack", *services]
    assert [v["name"] for v in d["vhosts"]] == [*services, "drills"]
    for s in services:
        assert {"user": s, "vhost": s, "configure": ".*", "write": ".*", "read": ".*"} in d["permissions"]
        assert {p["vhost"] for p in d["permissions"] if p["user"] == s} == {s}
    assert {p["vhost"] for p in d["permissions"] if p["user"] == "hastack"} == {*services, "drills"}


def test_password_hashes_verify(seed: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(seed)
    for user in defs(ctx)["users"]:
        secret = "rabbit/admin" if user["name"] == "hastack" else f"rabbit/{user['name']}"
        assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
        assert hash_matches(user["password_hash"], ctx.secrets.password(secret))
        assert ctx.secrets.password(secret) not in json.dumps(defs(ctx))
    admin = defs(ctx)["users"][0]
    assert admin["tags"] == ["administrator"]


def test_hash_is_deterministic_and_salted_per_user() -> None:
    assert rabbitmq.password_hash("nova", "pw") == rabbitmq.password_hash("nova", "pw")
    assert rabbitmq.password_hash("nova", "pw") != rabbitmq.password_hash("heat", "pw")
    assert rabbitmq.password_hash("nova", "pw") != rabbitmq.password_hash("nova", "pw2")


def test_no_policies_that_could_match_quorum_queues(seed: Topology, ctx_of: CtxOf) -> None:
    """Only oslo.messaging's classic reply and fanout queues are mirrored: they live on one broker and
    vanished under a client with a controller's power cycle. No RPC topic (a quorum queue) matches."""
    import re

    d = defs(ctx_of(seed))
    assert {p["vhost"] for p in d["policies"]} == {v["name"] for v in d["vhosts"]}
    for p in d["policies"]:
        if p["name"] == rabbitmq.INSTANCE_POLICY:
            continue  # below
        assert p["name"] == "ha-transient" and p["apply-to"] == "queues"
        assert p["definition"] == {"ha-mode": "all", "ha-sync-mode": "automatic"}
        pattern = re.compile(p["pattern"])
        for transient in ("reply_afdbadb6111f4d8aa28aaf641551df49", "conductor_fanout_0c81d3dc73bd484a",
                          "q-agent-notifier-port-update_fanout_1f2e"):
            assert pattern.search(transient), transient
        for quorum in ("conductor", "scheduler", "compute.cmp-1", "compute", "q-plugin", "engine", "drill",
                       "notifications.info", "reports.cmp-1"):
            assert not pattern.search(quorum), quorum


def test_queues_named_for_one_process_expire_once_unused(seed: Topology, four: Topology, ctx_of: CtxOf) -> None:
    """heat-engine's per-start queues (quorum queues nobody deletes) expire after 30 unused minutes, on
    every vhost; no shared topic, host queue, reply or fanout queue matches. With mirrored queues the
    same policy (the higher priority wins) mirrors them as well."""
    import re

    engine = "7c2b3f0e-41d5-4a8e-9a36-0f6e3b1d2c4a"
    for topo, extra in ((seed, {}), (mirrored(four), {"ha-mode": "all", "ha-sync-mode": "automatic"})):
        d = defs(ctx_of(topo))
        mine = [p for p in d["policies"] if p["name"] == rabbitmq.INSTANCE_POLICY]
        assert sorted(p["vhost"] for p in mine) == sorted(v["name"] for v in d["vhosts"])
        others = {p["priority"] for p in d["policies"] if p["name"] != rabbitmq.INSTANCE_POLICY}
        for p in mine:
            assert p["definition"] == {"expires": 1_800_000, **extra} and p["apply-to"] == "queues"
            assert p["priority"] > max(others)
            pattern = re.compile(p["pattern"])
            assert pattern.search(f"engine_worker.{engine}") and pattern.search(f"heat-engine-listener.{engine}")
            for shared in ("engine", "engine.ctl-1", "engine_worker", "heat-engine-listener", "compute.cmp-1",
                           f"reply_{engine.replace('-', '')}", f"engine_fanout_{engine.replace('-', '')}",
                           f"cinder-volume.ctl-1@{engine}", f"engine_worker.{engine}x", "q-plugin.ctl-1"):
                assert not pattern.search(shared), shared


def test_definitions_secret(seed: Topology, ctx_of: CtxOf) -> None:
    f = files(ctx_of(seed), seed.controllers[0])[rabbitmq.DEFINITIONS]
    assert (f.secret, f.mode, f.owner, f.group) == (True, 0o640, "root", "rabbitmq")


def test_transport_url_names_every_broker(seed: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(seed)
    pw = ctx.secrets.password("rabbit/nova")
    url = rabbitmq.transport_url(ctx, "nova")
    assert url == ("rabbit://" + ",".join(f"nova:{pw}@{n.address}:5672" for n in seed.controllers) + "/nova")


def test_four_servers_skips_absent_services(no_nova: Topology, ctx_of: CtxOf) -> None:
    names = [u["name"] for u in defs(ctx_of(no_nova))["users"]]
    assert "nova" not in names and "placement" not in names
    assert names == ["hastack", "keystone", "glance", "neutron", "cinder", "heat", "telemetry"]


def test_plugins(seed: Topology, ctx_of: CtxOf) -> None:
    assert files(ctx_of(seed), seed.controllers[0])[rabbitmq.PLUGINS].data == b"[rabbitmq_management].\n"


def test_four_servers_third_broker_on_the_arbitrator(four: Topology, ctx_of: CtxOf) -> None:
    """net-1 (arbitrator, not a controller) is the third cluster member, with the same cookie and
    definitions; services still connect to the two controllers only."""
    ctx = ctx_of(four)
    assert [n.name for n in four.nodes if rabbitmq.COMPONENT.applies(four, n)] == ["ctl-1", "ctl-2", "net-1"]
    net1 = four.node("net-1")
    c = conf(ctx, net1)
    peers = {v for k, v in c.items() if k.startswith("cluster_formation.classic_config.nodes.")}
    assert peers == {"rabbit@ctl-1", "rabbit@ctl-2", "rabbit@net-1"}
    assert c["listeners.tcp.1"] == f"{net1.address}:5672"
    assert c["cluster_partition_handling"] == "pause_minority"
    cookies = {files(ctx, n)[rabbitmq.COOKIE].data for n in four.brokers}
    assert len(cookies) == 1
    assert files(ctx, net1)[rabbitmq.DEFINITIONS].data == files(ctx, four.controllers[0])[rabbitmq.DEFINITIONS].data
    assert str(net1.address) not in rabbitmq.transport_url(ctx, "nova")


def mirrored(topo: Topology, **tuning: str) -> Topology:
    update: dict[str, object] = {"rabbitmq": topo.rabbitmq.model_copy(update={"queues": "mirrored"}),
                                 "nodes": [n for n in topo.nodes if not n.has("arbitrator") or n.has("controller")]}
    if tuning:
        t = topo.tuning.model_copy(update={"rabbitmq": topo.tuning.rabbitmq.model_copy(update=tuning)})
        update["tuning"] = t
    return topo.model_copy(update=update)


def test_mirrored_queues_policy_on_every_vhost(four: Topology, ctx_of: CtxOf) -> None:
    """The seed's classic mirrored queues: ha-mode all with automatic sync on every vhost, and with
    two brokers autoheal, so the lone survivor of a controller loss keeps serving."""
    topo = mirrored(four)
    assert [n.name for n in topo.brokers] == ["ctl-1", "ctl-2"]
    ctx = ctx_of(topo)
    d = defs(ctx)
    assert {p["vhost"] for p in d["policies"]} == {v["name"] for v in d["vhosts"]}
    for p in (p for p in d["policies"] if p["name"] != rabbitmq.INSTANCE_POLICY):
        assert p["definition"] == {"ha-mode": "all", "ha-sync-mode": "automatic"}
        assert p["apply-to"] == "queues" and p["pattern"] == r"^(?!amq\.).*"
    assert conf(ctx, topo.controllers[0])["cluster_partition_handling"] == "autoheal"
    chosen = mirrored(four, partition_handling="ignore")
    assert conf(ctx_of(chosen), chosen.controllers[0])["cluster_partition_handling"] == "ignore"


def test_a_boot_never_hangs_on_a_peer_that_remembers_the_previous_run(seed: Topology, ctx_of: CtxOf) -> None:
    """After a power cut the peers still hold a connection to the node's previous run and 3.10.8's
    boot can hang for good (seen in the lab): before booting, every peer is asked to drop it, and a
    boot that still hangs is stopped and retried within a bound."""
    ctx = ctx_of(seed)
    node = seed.node("ctl-1")
    f = files(ctx, node)
    dropin = f[rabbitmq.BOOT_DROPIN]
    assert dropin.restarts == (rabbitmq.UNIT,)
    assert f"TimeoutStartSec={rabbitmq.START_TIMEOUT_S}\n" in dropin.data.decode()
    assert f"ExecStartPre=-{rabbitmq.DROP_STALE}\n" in dropin.data.decode()
    script = f[rabbitmq.DROP_STALE]
    assert script.mode == 0o755 and script.data.startswith(b"#!/bin/sh\n")
    text = script.data.decode()
    assert "for peer in rabbit@ctl-2 rabbit@ctl-3; do\n" in text
    assert "eval \"erlang:disconnect_node('rabbit@ctl-1').\"" in text
    assert "timeout 10 " in text and text.endswith("wait\nexit 0\n")


def test_a_membership_change_restarts_no_broker(seed: Topology, ctx_of: CtxOf) -> None:
    """Replacing ctl-2 by ctl-4: on the brokers that stay, only the peer lists change, and they ask
    for no broker restart (peer discovery reads its list only when a node joins; the dead-peer watch,
    restarts with its own)."""
    replaced = replace_node(seed, "ctl-2", "ctl-4", "10.77.0.14")
    before, after = ctx_of(seed), ctx_of(replaced)
    for name in ("ctl-1", "ctl-3"):
        old, new = files(before, seed.node(name)), files(after, replaced.node(name))
        changed = sorted(p for p in old if old[p].data != new[p].data)
        assert changed == sorted([rabbitmq.DROP_STALE, rabbitmq.PEERS_CONF, rabbitmq.PEERS_UNIT_FILE]), changed
        assert all(rabbitmq.UNIT not in new[p].restarts for p in changed)
        assert new[rabbitmq.PEERS_UNIT_FILE].restarts == (rabbitmq.PEERS_UNIT,)
        assert "rabbit@ctl-4=10.77.0.14" in new[rabbitmq.PEERS_UNIT_FILE].data.decode()
        assert "rabbit@ctl-4" in new[rabbitmq.PEERS_CONF].data.decode()
        assert "rabbit@ctl-2" not in new[rabbitmq.PEERS_CONF].data.decode()


def test_every_broker_and_every_host_of_clients_watches_the_brokers_hosts(four: Topology, ctx_of: CtxOf) -> None:
    """The dead-peer watch (agents/rabbit_peers.py), on by default: on every broker, the arbitrator's
    too, probing the other brokers' epmd port, dropping them (`--drop`) where pause_minority is in
    effect, and on every node of OpenStack services cutting its connections to a dead one's AMQP
    port (`--cut 5672`); not with the reference profile or `dead_peer_after_s: 0`, nor with a
    single broker (no peer)."""
    assert rabbitmq.peer_watch(four) and rabbitmq.drops_peers(four)
    ctx = ctx_of(four)
    assert [n.name for n in rabbitmq.watch_nodes(four)] == [n.name for n in four.nodes]
    for n in four.nodes:
        f = files(ctx, n)
        unit = f[rabbitmq.PEERS_UNIT_FILE].data.decode()
        others = [f"rabbit@{o.name}={o.address}" for o in four.brokers if o.name != n.name]
        drop = "--drop " if n in four.brokers else ""
        want = f"ExecStart=/usr/bin/python3 {rabbitmq.PEERS_PROGRAM} {drop}--cut 5672 3 1 4369 {' '.join(others)}\n"
        assert want in unit
        assert ("After=rabbitmq-server.service" in unit) == (n in four.brokers)
        assert f[rabbitmq.PEERS_PROGRAM].mode == 0o755 and f[rabbitmq.PEERS_PROGRAM].restarts == (rabbitmq.PEERS_UNIT,)
    assert not rabbitmq.peer_watch(reference(four)) and not rabbitmq.peer_watch(watching(four, 0))
    assert rabbitmq.PEERS_UNIT_FILE not in files(ctx_of(reference(four)), four.node("ctl-1"))
    # with autoheal or ignore the brokers drop no one, and their hosts still cut their clients' connections
    for other in (mirrored(four, partition_handling="ignore"),
                  mirrored(four).model_copy(update={"nodes": [n for n in four.nodes if n.name != "net-1"]})):
        assert rabbitmq.peer_watch(other) and not rabbitmq.drops_peers(other)
        unit = files(ctx_of(other), other.node("ctl-1"))[rabbitmq.PEERS_UNIT_FILE].data.decode()
        assert f"{rabbitmq.PEERS_PROGRAM} --cut 5672 3 1 4369 rabbit@ctl-2=" in unit
    one = four.model_copy(update={"nodes": [n for n in four.nodes if n.name not in ("ctl-2", "net-1")]})
    assert len(one.brokers) == 1 and not rabbitmq.peer_watch(one)
