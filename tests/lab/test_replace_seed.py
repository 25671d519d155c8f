"""Lab tier, destructive, the last module on the seed lab: the controller holding the VIP dies, the
cloud keeps serving, and the dead controller is replaced by a new one.

The VIP is moved to ctl-2 first (a restart of keepalived on the holder; priorities fall with the
topology order), then ctl-2 is powered off for good, under the drills' database and broker
workloads. With it off: a token through the VIP, `hastack status` saying so (degraded, the host
unreachable, Galera without it, its HAProxy backends down, the VIP elsewhere) and a `server create`
(fake driver) that reaches ACTIVE through the API, conductor, scheduler and compute. Then the
operator writes ctl-4 (a new address) in its place, `hastack lab up` boots it beside the running
nodes and `hastack deploy` converges: Galera gives ctl-4 a full state transfer, RabbitMQ forgets
rabbit@ctl-2 and grows every quorum queue onto rabbit@ctl-4, every list (HAProxy, keepalived,
memcached, transport URLs) names ctl-4 instead of ctl-2, the agents
Pacemaker runs restart with the new URLs, and Nova, Cinder and Heat drop ctl-2's service rows.
The standby network node is given back too, the planned way: `hastack retire` takes it out of the
Pacemaker cluster while it runs (standby, its cluster stack stopped and disabled; Corosync keeps
quorum with the other node and the arbitrator's vote), it is powered off, and net-3 replaces it in
the same deploy: corosync.conf reloaded, Pacemaker forgets the old node and its fence device, net-3
gets its own and the qdevice certificate. The deploy is `hastack rotate-secrets` (what an operator
should run when a dead disk held every service's passwords): every service moves onto a new SQL,
RabbitMQ and Keystone login in the same rolling restarts, and the previous logins must be gone from
MariaDB, RabbitMQ and Keystone afterwards. All of it under the workloads, whose acknowledged writes
and confirmed messages must all be there afterwards (on ctl-4 too).

Why ctl-2 and not ctl-3: in the seed, ctl-3 is also the network cluster's quorum device (qnetd);
replacing the arbitrator is a different procedure (README, "Replacing a dead controller").

The module leaves the seed lab with ctl-4 instead of ctl-2 (it sorts last of the seed-lab modules,
and the session takes the lab down after it). A developer keeping the lab (HASTACK_KEEP_LAB=1) takes
it down before the next run: `hastack lab down examples/seed.yml`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hastack import pki
from hastack.components import logins, rabbitmq
from hastack.components.base import Ctx
from hastack.deploy.stages.logins import principals, under_way
from hastack.drills.samples import Recorder
from hastack.drills.scoring import score
from hastack.drills.workloads.base import Credentials, Endpoints
from hastack.drills.workloads.broker import Broker
from hastack.drills.workloads.db import DbWrites
from hastack.drills.workloads.http import KeystoneTokens, NeutronNetworks
from hastack.facts.pacemaker import parse_crm_mon
from hastack.secrets import Secrets, secrets_path
from hastack.topology.load import load
from seedcloud import (
    agents_node,
    amqp_connections,
    clients_cut_from,
    create_server,
    install_clouds_yaml,
    osc,
    osc_quietly,
    osc_text,
    ready_to_build,
    until,
)
from seedcloud import on as on_seed
from seedlab import ROOT, SEED, VIP, codes, finding, hastack, on, wait_for

pytestmark = pytest.mark.lab

GONE, GONE_ADDRESS = "ctl-2", "10.77.0.12"
SEED_TOPOLOGY = load(SEED).topology
assert SEED_TOPOLOGY is not None
NEW, NEW_ADDRESS = "ctl-4", "10.77.0.14"
STAYING = ("ctl-1", "ctl-3", NEW)
NAME = "hs-replace"
# Where a controller's name or address could linger: every rendered config of the survivors.
CONFIG_DIRS = "/etc/haproxy /etc/keepalived /etc/mysql /etc/rabbitmq /etc/memcached.conf /etc/keystone " \
              "/etc/glance /etc/placement /etc/nova /etc/neutron /etc/cinder /etc/heat /etc/hastack"


NET_NEW, NET_NEW_ADDRESS = "net-3", "10.77.0.23"


@dataclass(frozen=True)
class Replaced:
    topology: Path
    net_gone: str
    """The network node powered off for good: the standby one (the agents run on the other)."""
    net_staying: str


@pytest.fixture(scope="module")
def replaced(seed_lab: Path) -> Iterator[Replaced]:
    """The seed topology with ctl-2 replaced by ctl-4 and the standby network node by net-3, beside
    seed.yml (same name, same secrets and lab key); removed afterwards."""
    text = SEED.read_text()
    old = f"- {{name: {GONE}, address: {GONE_ADDRESS}, roles: [controller]}}"
    assert old in text
    text = text.replace(old, f"- {{name: {NEW}, address: {NEW_ADDRESS}, roles: [controller]}}")
    staying = agents_node()
    gone = next(n for n in ("net-1", "net-2") if n != staying)
    block = re.search(rf"  - name: {gone}\n(    .*\n)+", text)
    assert block, text
    net = re.sub(r"10\.77\.0\.2\d\b", NET_NEW_ADDRESS, block.group(0).replace(gone, NET_NEW))
    path = ROOT / "examples" / ".seed-replaced.yml"
    path.write_text(text.replace(block.group(0), net))
    try:
        yield Replaced(path, gone, staying)
    finally:
        path.unlink(missing_ok=True)


def run_ok(*args: str, timeout: float = 1800) -> str:
    res = hastack(*args, timeout=timeout)
    assert res.returncode == 0, f"hastack {' '.join(args)}:\n{res.stdout[-4000:]}\n{res.stderr[-2000:]}"
    return str(res.stdout)


def vip_holders(among: tuple[str, ...] = ("ctl-1", "ctl-2", "ctl-3")) -> list[str]:
    return [n for n in among if f"{VIP}/" in on_seed(n, "ip -br -4 addr show")]


def move_vip_to(target: str) -> None:
    """Restart keepalived where the VIP is until `target` holds it (nopreempt: the highest priority
    of the others takes it; at most two moves from any holder). Bounded."""
    for _ in range(3):
        holders = vip_holders()
        if holders == [target]:
            return
        assert len(holders) == 1, holders
        on_seed(holders[0], "systemctl restart keepalived")
        until(f"the VIP away from {holders[0]}", lambda h=holders[0]: (v := vip_holders()) and v != [h] and v,
              60, interval=1)
    assert vip_holders() == [target]


@pytest.fixture()
def tenant(replaced: Replaced) -> Iterator[dict[str, Any]]:
    """A network, a flavor and an image for the server, created before the fault; removed after."""
    client = install_clouds_yaml()
    on_seed(client, f"head -c 1024 /dev/zero > /root/{NAME}.img")
    try:
        net = osc(client, "network", "create", f"{NAME}-net")
        osc(client, "subnet", "create", "--network", net["id"], "--subnet-range", "192.168.79.0/24", f"{NAME}-sub")
        osc(client, "flavor", "create", "--ram", "64", "--disk", "0", "--vcpus", "1", f"{NAME}-flavor")
        osc(client, "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file",
            f"/root/{NAME}.img", f"{NAME}-image")
        yield {"client": client, "net": net["id"]}
    finally:
        for argv in (["server", "delete", "--wait", f"{NAME}-vm"], ["flavor", "delete", f"{NAME}-flavor"],
                     ["image", "delete", f"{NAME}-image"], ["network", "delete", f"{NAME}-net"]):
            osc_quietly(client, *argv, timeout=300)
        on_seed(client, f"rm -f /root/{NAME}.img", check=False)


def serve_with_the_vip_controller_off(client: str, net: str, off_at: float, had: dict[str, int] | None) -> None:
    """ctl-2 (the VIP holder) is off (since `off_at`, the epoch): a token through the VIP, the
    survivors drop its broker and cut their clients' connections to it (their dead-peer watch, when
    the topology turns it on: `had`, each survivor's connections to it before), then `server create`
    reaches ACTIVE."""
    t0 = time.monotonic()
    until("a token through the VIP", lambda: osc(client, "token", "issue")["id"], 120)
    token_s = time.monotonic() - t0
    # how `hastack status` tells it: the host unreachable, Galera degraded without it, its HAProxy
    # backends down, the VIP on one survivor
    doc = wait_for(SEED, f"{GONE} down and the cluster degraded", lambda code, d: (
        code == 1 and "HOST-UNREACHABLE" in codes(d, GONE) and "GALERA-DEGRADED" in codes(d)
        and "HAPROXY-SERVER-DOWN" in codes(d, GONE) and len(d["vip"]["holders"]) == 1), timeout=240,
        nodes=("ctl-1", "ctl-3"))
    degraded = finding(doc, "GALERA-DEGRADED")["message"]
    assert doc["vip"]["holders"][0] != GONE and GONE in degraded and "2 of 3" in degraded, degraded
    status_s = time.monotonic() - t0
    # Until the survivors drop the silent node (the dead-peer watch, seconds; Erlang's tick timer
    # without it), RabbitMQ's metadata operations wait for it and a publish can be nacked: the
    # documented window. An agent (or nova-compute) whose reports went through the dead broker is
    # alive again at its first report after that; the cloud builds once its own view says so
    # (ready_to_build), and from then on nothing may fail.
    connected = f"rabbitmqctl -q eval \"lists:member('rabbit@{GONE}', nodes()).\""
    until(f"ctl-1's broker no longer connected to {GONE}",
          lambda: on_seed("ctl-1", connected, timeout=60).strip() == "false", 180, interval=1)
    broker_s = time.monotonic() - t0
    if had is not None:  # dropped by the dead-peer watch, and every host's clients cut from it
        clients_cut_from(lambda n, c: on_seed(n, c, timeout=60), GONE, GONE_ADDRESS, had,
                         int(off_at))
    until("nova-compute up and every Neutron agent alive", lambda: ready_to_build(lambda *a: osc(client, *a)),
          120, interval=1)
    ready_s = time.monotonic() - t0
    server = create_server(lambda *a, **kw: osc_text(client, *a, **kw), f"{NAME}-vm", "--flavor", f"{NAME}-flavor",
                           "--image", f"{NAME}-image", "--network", net)
    assert server["status"] == "ACTIVE", server
    print(f"{GONE} (the VIP holder) off -> token through the VIP {token_s:.1f} s, status degraded "
          f"{status_s:.1f} s, brokers dropped it {broker_s:.1f} s, the cloud ready to build {ready_s:.1f} s, "
          f"server ACTIVE {time.monotonic() - t0:.1f} s")
    assert len(vip_holders(("ctl-1", "ctl-3"))) == 1


def standby_network_node_retired(r: Replaced) -> None:
    """The standby network node given back (another cluster than the controllers'): `hastack retire`
    while it runs (standby, then its cluster stack stopped and disabled), then powered off. Pacemaker
    sees it offline and clean, with quorum (the other node and qnetd), and the agents stay where they
    ran. The deploy that follows forgets it like a dead one (`crm_node --remove`)."""
    t0 = time.monotonic()
    out = run_ok("retire", r.net_gone, str(SEED), "--yes", timeout=600)
    took = time.monotonic() - t0
    assert f"{r.net_gone} retired" in out, out
    st = parse_crm_mon(on_seed(r.net_staying, "crm_mon --one-shot --inactive --output-as=xml"))
    node = st.node(r.net_gone)
    assert not node.online and not node.unclean and st.with_quorum, st
    assert agents_node(r.net_staying) == r.net_staying
    enabled = on_seed(r.net_gone, "systemctl is-enabled corosync pacemaker || true").split()
    assert enabled and set(enabled) == {"disabled"}, enabled  # a reboot does not bring it back
    run_ok("lab", "power", "-t", str(SEED), r.net_gone, "off", timeout=300)
    print(f"{r.net_gone} (the standby network node) retired in {took:.1f} s (hastack retire), then off")


def test_the_vip_controller_dies_the_cloud_serves_and_a_new_one_replaces_it(
        replaced: Replaced, tenant: dict[str, Any]) -> None:
    r = replaced
    path = r.topology
    loaded = load(path)
    assert loaded.topology is not None
    topo = loaded.topology
    secrets = Secrets.load(secrets_path(path, topo.name))
    creds = Credentials.from_secrets(secrets)
    # Clients know the new membership (like every service after the deploy): ctl-4 refuses them
    # until it has joined, and they move on to the next broker or keep writing through the VIP.
    ep = Endpoints.from_topology(topo, pki.ca_cert(secrets))
    run_id = f"replace-{int(time.time())}"
    db = DbWrites(ep, creds, run_id, rate=5.0, workers=2, verify_timeout=120.0)
    mq = Broker(ep, creds, run_id, rate=5.0, workers=2)
    # the APIs through the VIP, at a drill's rates halved (the deploy restarts every service)
    workloads = [db, mq, KeystoneTokens(ep, creds, run_id, rate=5.0, workers=2),
                 NeutronNetworks(ep, creds, run_id, rate=2.0, workers=2)]
    for w in workloads:
        w.prepare()
    move_vip_to(GONE)

    rec, stop = Recorder(), threading.Event()
    rec.event("start", "the VIP controller dies, a new one replaces it")
    threads = [threading.Thread(target=w.run, args=(rec, stop, 3600.0), daemon=True) for w in workloads]
    for t in threads:
        t.start()
    try:
        rec.event("fault", f"{GONE} powered off for good; {NEW} replaces it")
        had = None
        if rabbitmq.peer_watch(SEED_TOPOLOGY):
            had = amqp_connections(lambda n, c: on_seed(n, c, timeout=60), GONE_ADDRESS,
                                   [n.name for n in rabbitmq.watch_nodes(SEED_TOPOLOGY) if n.name != GONE])
        off_at = time.time()
        run_ok("lab", "power", "-t", str(SEED), GONE, "off", timeout=300)
        serve_with_the_vip_controller_off(tenant["client"], tenant["net"], off_at, had)
        rec.event("fault", f"{r.net_gone} retired and powered off; {NET_NEW} replaces it")
        standby_network_node_retired(r)
        t0 = time.monotonic()
        up = run_ok("lab", "up", str(path), timeout=600)
        # rotate-secrets deploys, and moves every service onto new logins: the dead disk held them all
        deployed = run_ok("rotate-secrets", str(path), "--yes", timeout=2400)
        took = time.monotonic() - t0
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    for w in workloads:
        w.verify(rec)
    scores = score(rec.snapshot())
    actions = [ln for ln in deployed.splitlines() if "] [files] " not in ln or " stage " in ln]
    print(up[-600:], *actions[-200:], sep="\n")
    print(f"replace: lab up + deploy {took:.1f}s; db acked {scores.writes.acked} lost {scores.writes.lost}; "
          f"messages confirmed {scores.messages.confirmed} lost {scores.messages.lost}; "
          f"gaps {{{', '.join(f'{k}: {g.seconds:.2f}s' for k, g in scores.gaps.items() if g)}}}")
    assert scores.writes.acked > 0 and scores.messages.confirmed > 0
    assert scores.writes.lost == 0, scores.writes
    assert scores.messages.lost == 0, scores.messages
    assert "removed rabbit@ctl-2 from the RabbitMQ cluster" in deployed, deployed[-4000:]

    # Bounded polling: right after a deploy that restarted every API, one status read of a service
    # list timed out once in the lab (exit 3, "unknown"); the next one was healthy.
    def healthy() -> bool:
        res = hastack("status", str(path), timeout=180)
        assert res.returncode == 0, res.stdout[-3000:]
        return True

    until("hastack status healthy after the replacement", healthy, 300, interval=5)

    # -- the logins: every service on its new one, the previous ones gone from every store ----------
    after = Secrets.load(secrets_path(path, topo.name))
    moved = {p: (logins.login(secrets, p.kind, p.base).user, logins.login(after, p.kind, p.base).user)
             for p in principals(topo)}
    assert all(new == logins.alternate(p.base, old) for p, (old, new) in moved.items()), moved
    assert not under_way(Ctx(topo, after)), "the rotation is finished"
    assert not [n for n in after.names() if n.endswith(("/previous", "/previous-user"))]
    sql = set(on(path, "ctl-1", "mariadb", "-N", "-B", "-e", "SELECT User FROM mysql.user").split())
    mq = {u["user"] for u in json.loads(on(path, NEW, "rabbitmqctl", "-q", "list_users", "--formatter", "json"))}
    listed = on(path, "cmp-1", "sh", "-c", "openstack --os-cloud hastack user list -f json")
    ks = {u["Name"] for u in json.loads(listed)}
    for kind, live in (("db", sql), ("rabbit", mq), ("keystone", ks)):
        pairs = [pair for p, pair in moved.items() if p.kind == kind]
        assert all(new in live and old not in live for old, new in pairs), (kind, pairs, sorted(live))
    assert "rotation finished" in deployed, deployed[-3000:]

    # -- no trace of ctl-2 in any live list ---------------------------------------------------------
    rabbit = json.loads(on(path, "ctl-1", "rabbitmqctl", "-q", "cluster_status", "--formatter", "json"))
    brokers = sorted(f"rabbit@{n.name}" for n in topo.brokers)
    assert NEW in str(brokers) and sorted(rabbit["disk_nodes"]) == brokers, rabbit
    members = on(path, "ctl-1", "rabbitmqctl", "-q", "list_queues", "--vhost", "nova", "--formatter", "json",
                 "name", "type", "members")
    for q in json.loads(members):
        if q["type"] == "quorum":
            assert f"rabbit@{NEW}" in q["members"] and f"rabbit@{GONE}" not in q["members"], q
    wsrep = on(path, "ctl-1", "mariadb", "-N", "-B", "-e",
               "SHOW STATUS WHERE Variable_name IN ('wsrep_cluster_size', 'wsrep_incoming_addresses')")
    assert re.search(r"wsrep_cluster_size\s+3\b", wsrep), wsrep
    assert GONE_ADDRESS not in wsrep and NEW_ADDRESS in wsrep, wsrep
    for node in STAYING:
        left = on(path, node, "sh", "-c",
                  f"grep -rlE '{re.escape(GONE_ADDRESS)}|\\b{GONE}\\b' {CONFIG_DIRS} 2>/dev/null || true")
        assert not left.strip(), f"{node}: {GONE} still named in {left}"
    nets = (r.net_staying, NET_NEW)
    for node in (*nets, "cmp-1"):
        left = on(path, node, "sh", "-c", f"grep -rlE '{re.escape(GONE_ADDRESS)}' /etc/neutron /etc/nova "
                                          "2>/dev/null || true")
        assert not left.strip(), f"{node}: {GONE_ADDRESS} still named in {left}"
    # -- the network cluster: net-3 in, the dead node out of Corosync and Pacemaker -----------------
    gone_address = str(load(SEED).topology.node(r.net_gone).address)  # type: ignore[union-attr]
    for node in nets:
        left = on(path, node, "sh", "-c", f"grep -rlE '{re.escape(gone_address)}|\\b{r.net_gone}\\b' "
                                          "/etc/corosync /etc/hastack 2>/dev/null || true")
        assert not left.strip(), f"{node}: {r.net_gone} still named in {left}"
    st = parse_crm_mon(on(path, r.net_staying, "crm_mon", "--one-shot", "--inactive", "--output-as=xml"))
    assert sorted(n.name for n in st.nodes) == sorted(nets) and set(st.nodes_in("online")) == set(nets), st.nodes
    assert st.running_on(f"fence-{NET_NEW}") and not any(r.net_gone in res.id for res in st.resources), st.resources
    assert len({n for u in ("neutron-l3-agent", "neutron-dhcp-agent") for n in st.running_on(u)}) == 1
    votes = on(path, NET_NEW, "corosync-quorumtool", "-s")
    assert re.search(r"Total votes:\s+3\b", votes) and re.search(r"Quorate:\s+Yes", votes), votes
    for api, cmd in (("compute", "compute service list"), ("volume", "volume service list"),
                     ("orchestration", "orchestration service list")):
        rows = json.loads(on(path, "cmp-1", "sh", "-c", f"openstack --os-cloud hastack {cmd} -f json"))
        hosts = {str(row.get("Host") or row.get("host") or row.get("Hostname") or "") for row in rows}
        assert not any(h == GONE or h.startswith(f"{GONE}@") for h in hosts), f"{api}: {sorted(hosts)}"
