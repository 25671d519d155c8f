"""`hastack recover`: read every node, show the plan, and only after confirmation act on it.

Reuses the deploy engine (commands, facts, events, gates) so a recovery fails the same way a
deploy does: host, step, command, exit code, output tail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from hastack.components import rabbitmq
from hastack.deploy import services
from hastack.deploy.engine import Deploy, StepFailed
from hastack.deploy.reads import crm_state, rabbit_cluster, wait_synced
from hastack.deploy.stages.galera import GaleraStage
from hastack.deploy.stages.openstack import OpenStackStage
from hastack.deploy.stages.pacemaker import PacemakerStage
from hastack.deploy.stages.rabbitmq import RabbitMQStage
from hastack.deploy.stages.vip import VipStage
from hastack.deploy.systemd import ensure_running, ensure_units, unit_states
from hastack.deploy.wait import GateTimeout, until
from hastack.facts import RabbitCluster, galera_status, grastate, wsrep_recover
from hastack.facts.galera import NIL_UUID
from hastack.recover import galera
from hastack.topology.model import Node
from hastack.transport.base import TransportError

GRASTATE = "/var/lib/mysql/grastate.dat"
Confirm = Callable[[list[str]], bool]


SETTLE_S = 300
"""Right after a power loss a node may still be booting, and its mariadb waiting for its peers.
Measured in the lab: sshd listening 0.3 s after boot, Galera re-formed by itself within 9 s. The
"refused SSH for more than 90 s" seen in CI was recover's transport repeating its first refusal
(fixed in `transport.fleet.Unreachable`); a slower boot on a loaded host is what this bound is for."""


async def settle(d: Deploy, node: Node, timeout: float = SETTLE_S) -> None:
    """A mariadb that is starting (e.g. at boot, waiting for its peers) neither answers nor can be
    recovered, and a node that is still booting does not answer at all: wait, bounded, until it
    answers or stops."""
    async def probe() -> tuple[bool, object]:
        st = (await unit_states(d, node.name, ["mariadb"]))["mariadb"]
        if st.active_state in ("activating", "deactivating", "reloading"):
            return False, st.active_state
        return True, st.active_state

    try:
        await until(probe, what=f"mariadb on {node.name} to finish starting or stopping", timeout=timeout, interval=1)
    except GateTimeout as exc:
        raise StepFailed(node.name, "read the Galera position", f"{exc}; stop it (systemctl stop mariadb) "
                         "and run recover again", code="GALERA-POSITION-UNREADABLE") from exc


async def position(d: Deploy, node: Node, *, recover: bool) -> galera.Position:
    await settle(d, node)
    st = await d.fact(node.name, galera_status(), "read wsrep status")
    if st.available:
        return galera.Position(node.name, True, True, st.primary, st.cluster_uuid, st.last_committed,
                               False, "running: wsrep_last_committed")
    gs = await d.fact(node.name, grastate(), "read grastate.dat")
    if gs is None:
        return galera.Position(node.name, source="no grastate.dat", uuid=NIL_UUID, seqno=-1)
    if gs.seqno >= 0:
        return galera.Position(node.name, True, False, False, gs.uuid, gs.seqno, gs.safe_to_bootstrap, "grastate.dat")
    if not recover:
        return galera.Position(node.name, True, False, False, gs.uuid, None, gs.safe_to_bootstrap,
                               error="seqno -1 in grastate.dat")
    rec = await d.fact(node.name, wsrep_recover(), "recover the position (mariadbd --wsrep-recover)")
    return galera.Position(node.name, True, False, False, rec.uuid, rec.seqno, gs.safe_to_bootstrap,
                           "mariadbd --wsrep-recover")


async def galera_plan(d: Deploy, lost: list[str]) -> galera.GaleraPlan:
    async def one(n: Node) -> galera.Position:
        if n.name in lost:
            return galera.Position(n.name, reachable=False, error="named lost")
        try:
            return await position(d, n, recover=True)
        except StepFailed as exc:
            if isinstance(exc.__cause__, TransportError):  # the node is gone, not a failed command
                return galera.Position(n.name, reachable=False, error=exc.detail)
            raise

    positions = await asyncio.gather(*(one(n) for n in d.topo.controllers))
    return galera.plan(list(positions), lost)


async def galera_execute(d: Deploy, p: galera.GaleraPlan) -> None:
    if p.action == "refuse":
        raise StepFailed(d.topo.controllers[0].name, "plan the Galera recovery", p.reason,
                         code="GALERA-RECOVERY-REFUSED")
    if p.bootstrap:
        await bootstrap(d, p.bootstrap, next(x for x in p.positions if x.node == p.bootstrap).running)
    for j in p.joiners:
        d.checkpoint()
        since = (await d.run(j.node, ["date", "+%s"], "read the clock")).stdout.strip()
        await ensure_running(d, j.node, "mariadb", restart=False)
        await wait_synced(d, j.node, timeout=600)
        log = await d.run(j.node, ["journalctl", "-u", "mariadb", f"--since=@{since}", "--no-pager", "-q"],
                          "read how it caught up", check=False)
        d.changed(j.node, f"rejoined: {transfer_seen(log.stdout)} (planned: {j.transfer})")
    stage = GaleraStage()
    await d.each(d.topo.garbd_nodes, lambda n: stage.garbd(d, n))
    await stage.gate(d)


def transfer_seen(journal: str) -> str:
    """What the joiner's log says it did: an incremental transfer, a full copy, or neither."""
    if "Receiving IST" in journal or "IST received" in journal:
        return "IST (incremental)"
    if "wsrep_sst_" in journal or "SST received" in journal or "SST succeeded" in journal:
        return "SST (full copy)"
    return "no transfer needed"


async def bootstrap(d: Deploy, node: str, running: bool) -> None:
    if running:  # a running non-primary node becomes the primary component in place
        await d.run(node, ["mariadb", "-e", "SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'"],
                    "declare the primary component")
    else:
        await d.run(node, ["sed", "-i", "s/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/", GRASTATE],
                    "mark the node safe to bootstrap")
        await d.run(node, ["galera_new_cluster"], "bootstrap the primary component", timeout=600)
    d.changed(node, "bootstrapped the Galera primary component")
    await wait_synced(d, node, timeout=300)


async def rabbitmq_execute(d: Deploy) -> None:
    """Brokers start together (a lone broker waits for its peers); the gate then wants every
    member running and no partition. force_boot is used only when every broker stays down."""
    ctls = d.topo.brokers
    states = {n.name: (await rabbit_cluster(d, n.name)).available for n in ctls}
    down = [n for n in ctls if not states[n.name]]
    if down:
        results = await asyncio.gather(*(d.run(n.name, ["systemctl", "start", "rabbitmq-server"],
                                               "start the broker", timeout=330, check=False) for n in down))
        failed = [n for n, r in zip(down, results, strict=True) if not r.ok]
        if failed and len(failed) == len(ctls):
            first = failed[0].name
            d.info(first, "no broker could start: force_boot on the first broker (it then waits for no peer)")
            await d.run(first, ["rabbitmqctl", "force_boot"], "force_boot")
            await d.run(first, ["systemctl", "start", "rabbitmq-server"], "start the broker", timeout=330)
            failed = failed[1:]
        for n in failed:
            await d.run(n.name, ["systemctl", "start", "rabbitmq-server"], "start the broker", timeout=330)
        for n in down:
            d.changed(n.name, "started rabbitmq-server")
    await heal_partition(d)
    await RabbitMQStage().gate(d)


def partition_losers(views: list[RabbitCluster], brokers: list[str]) -> list[str]:
    """The brokers on the minority side of a recorded partition: those that more than half of all
    brokers report they cannot reach (every view's partitions merged). Restarting them is the
    documented way out; a quorum queue loses nothing by it (its majority is on the other side)."""
    unreachable: dict[str, set[str]] = {}
    for v in views:
        for node, peers in v.partitions.items():
            unreachable.setdefault(node, set()).update(peers)
    majority = len(brokers) // 2 + 1
    return [b for b in brokers if sum(1 for node, peers in unreachable.items() if node != b and b in peers) >= majority]


async def heal_partition(d: Deploy) -> None:
    """What `pause_minority` can leave behind when a cut link comes back at the very moment Erlang
    gives up on the node (`net_tick_timeout`), both seen on the lab and nothing healing either
    (docs/reliability/rabbit-partition-at-nodedown-2026-12-06): a broker whose app stayed stopped
    although it sees the majority again, and a partition recorded with nothing paused (the
    minority's brokers). Both restart and rejoin. A partition with no clear minority is left to the
    operator."""
    hosts = {rabbitmq.nodename(n): n.name for n in d.topo.brokers}
    views = [await rabbit_cluster(d, h) for h in hosts.values()]
    for (name, host), view in zip(hosts.items(), views, strict=True):
        if view.app_stopped:
            await restart_broker(d, host)
            d.changed(host, f"restarted {name} (its Erlang node ran, its app had stopped)")
    if not any(v.partitioned for v in views):
        return
    losers = partition_losers([v for v in views if v.available], list(hosts))
    if not losers:
        parts = sorted({f"{n} cannot reach {', '.join(p)}" for v in views for n, p in v.partitions.items() if p})
        raise StepFailed(next(iter(hosts.values())), "heal the RabbitMQ partition",
                         f"no broker is cut off from a majority ({'; '.join(parts)}): restart the brokers of "
                         "the side with the fewest clients (`systemctl restart rabbitmq-server`)",
                         code="RABBIT-PARTITION-UNRESOLVED")
    for name in losers:
        host = hosts[name]
        d.info(host, f"{name} is on the minority side of a recorded partition: restarting it")
        await restart_broker(d, host)
        d.changed(host, f"restarted {name} (the minority side of a partition)")


async def restart_broker(d: Deploy, host: str) -> None:
    """The whole broker, not its app: after pause_minority stopped the app, `start_app` fails on the
    lab (Mnesia still runs: rabbit_prelaunch's assertion); a restarted node rejoins at boot."""
    await d.run(host, ["systemctl", "restart", "rabbitmq-server"], "restart the broker", timeout=330)
    await d.run(host, ["rabbitmqctl", "-q", "await_startup", "--timeout", "120"], "wait for the broker", timeout=150)


async def pacemaker_execute(d: Deploy) -> None:
    stage = PacemakerStage()
    members = d.topo.network_nodes
    for q in d.topo.qnetd_nodes:
        await stage.qnetd(d, q)
    units = ["corosync", "corosync-qdevice", "pacemaker"] if d.topo.qnetd_nodes else ["corosync", "pacemaker"]
    for unit in units:
        await d.each(members, lambda n, u=unit: stage.start(d, n, u))  # type: ignore[misc]
    await stage.wait_dc(d, members[0].name)
    st = await crm_state(d, members[0].name)
    if st.failures or any(r.blocked or r.failed for r in st.resources):
        await d.run(members[0].name, ["crm_resource", "--cleanup"], "clean up failed actions")
        d.changed(members[0].name, f"cleaned up {len(st.failures)} failed action(s)")
    await stage.gate(d)


async def vip_execute(d: Deploy) -> None:
    await VipStage().run(d)


async def openstack_execute(d: Deploy, lost: list[str]) -> None:
    """Every node's OpenStack units running again, then every API on the VIP and every service up.

    The units restart by themselves (components/openstack.DAEMON_DROPIN), but a unit that reached
    its start limit under an older drop-in, or was stopped by hand, would stay down: recover all
    ends with every layer serving, so it starts them. A node named lost is left alone and not
    waited for."""
    nodes = [n for n in d.topo.nodes if n.name not in lost and services.service_units(d.topo, n)]
    await d.each(nodes, lambda n: ensure_units(d, n.name, services.service_units(d.topo, n),
                                             enable=False, restart=False, block=False))
    alive = [n.name for n in d.topo.controllers if n.name not in lost]
    if not alive:
        return
    host = alive[0]
    await services.wait_http(d, host, services.vip_api_urls(d.topo), "every API through HAProxy on the VIP")
    expect = [e for e in services.expectations(d.topo) if e.host not in lost]
    await services.api_gate(d, expect, "every service up through the VIP", host=host)


async def recover(d: Deploy, what: str, *, lost: list[str], dry_run: bool, confirm: Confirm,
                  show: Callable[[list[str]], None]) -> bool:
    """Returns False when nothing was done (dry run, refusal shown, or not confirmed)."""
    steps: list[tuple[str, Callable[[], Awaitable[None]]]] = []
    if what in ("galera", "all"):
        p = await galera_plan(d, lost)
        show(p.render())
        if p.action == "refuse" or dry_run:
            return False
        if p.action == "bootstrap" and not confirm(p.render()):
            return False
        steps.append(("galera", lambda: galera_execute(d, p)))
    elif dry_run:
        show([f"recover {what}: would start stopped members together and gate on health"])
        return False
    if what in ("rabbitmq", "all"):
        steps.append(("rabbitmq", lambda: rabbitmq_execute(d)))
    if what == "all":
        steps.append(("vip", lambda: vip_execute(d)))
        if OpenStackStage().applies(d):
            steps.append(("openstack", lambda: openstack_execute(d, lost)))
    if what in ("pacemaker", "all") and d.topo.network_nodes:
        steps.append(("pacemaker", lambda: pacemaker_execute(d)))
    for name, fn in steps:
        d.stage = name
        await fn()
    return True
