"""keepalived (VRRPv3) on every controller: the VIP follows a healthy HAProxy.

Choices and why:
- Unicast adverts to the other controllers (`unicast_peer`) rather than multicast: they work on
  any L2 network (no dependence on IGMP snooping, which lost multicast adverts in the lab), and
  `vrrp_check_unicast_src` drops adverts from anything that is not a listed controller. The peer
  list comes from the topology, which hastack renders on every controller anyway.
- Every controller starts BACKUP with `nopreempt`; priorities fall with controller order so the
  first election is deterministic. A master that fails loses the VIP once; when it comes back it
  does not take the VIP back (preemption would cost a second gap of ~0.3 s for no gain).
- `advert_int` from tuning (0.1 s: the lab measured 0.3 s failover on a cut link and no false
  switches under load). The track script curls this node's own HAProxy `/healthz` by the node's
  own address with weight 0, so a dead or hung HAProxy puts the instance in FAULT and a backup
  whose HAProxy answers takes over. keepalived 2.2.7 runs track scripts at whole-second intervals
  only (`check_interval` is rounded up, see `check_interval()`): with fall 2 a dead HAProxy on a
  live node moves the VIP in ~2 s (measured 1.6 s); a dead node or link still moves it in ~0.3 s.
- A quorum track (agents/vip_quorum.py, `hastack-vip-quorum.service`): a controller that sees less
  than a majority of Galera's votes (itself included) goes to FAULT, so a VIP holder cut off from the
  others gives the VIP up instead of holding it beside the new master, and a backup cut off the same
  way never takes it. The watch probes every advert_int / 4 and decides on a window of
  1.5 x advert_int, and keepalived reads its verdict from a file on inotify's event
  (`track_file`): the isolated node is in FAULT before the other side's takeover
  (3 x advert_int after the last advert). The first version, a track script, reacted in
  `check_fall` runs of 1 s and left both holders for about 2 s.
- The VRRP process runs realtime (`vrrp_rt_priority`, tuning `rt_priority`, 50) and locked in memory
  (`vrrp_no_swap`). On the lab's loaded 2-core host, during a controller's cold start, it waited
  5.8-7.6 ms on the run queue per wakeup on average at normal priority (3-8 µs realtime), and a CI
  drill saw a VIP move between two healthy controllers
  during a cold start; a backup that is not scheduled for 3 x advert_int takes the VIP beside a live
  master. keepalived resets its scripts to normal scheduling (SCHED_RESET_ON_FORK).
- keepalived dies or freezes: a drop-in removes its VIPs when its process ends, however it ended,
  and restarts it (`dropin`); the VIP guard (agents/vip_guard.py) kills a frozen keepalived so the
  drop-in does the rest. Without them the VIP stays on the old master beside the new one.
- No `authentication`: it does not exist in VRRPv3 (RFC 5798); keepalived 2.2.7 says "VRRP version 3
  does not support authentication" and `keepalived -t` fails. The `keepalived/auth` secret is unused.
- The public VIP, when configured, moves in the same instance (`dev <public interface>`): nodes
  have no addresses of their own on the public network, so a second VRRP instance there would have
  nothing to advertise from; one instance also keeps both VIPs on the same controller. The
  `public_router_id` tuning value is therefore unused.
"""

from __future__ import annotations

from pathlib import Path

from hastack import pki
from hastack.agents import vip_guard as guard
from hastack.agents import vip_quorum as quorum
from hastack.components import galera, haproxy
from hastack.components.base import HEADER, Ctx, File, template
from hastack.topology.model import Node, Topology

CONF = "/etc/keepalived/keepalived.conf"
UNIT = "keepalived"
DROPIN = "/etc/systemd/system/keepalived.service.d/hastack.conf"
GUARD_UNIT = "hastack-vip-guard"
GUARD_UNIT_FILE = f"/etc/systemd/system/{GUARD_UNIT}.service"
GUARD_PROGRAM = "/usr/local/lib/hastack/vip-guard"
QUORUM_UNIT = "hastack-vip-quorum"
QUORUM_UNIT_FILE = f"/etc/systemd/system/{QUORUM_UNIT}.service"
QUORUM_PROGRAM = "/usr/local/lib/hastack/vip-quorum"
QUORUM_FILE = "/run/hastack-vip-quorum"
INSTANCE = "hastack_vip"
SCRIPT_USER = "nobody"
TOP_PRIORITY = 200
PRIORITY_STEP = 10


def priority(topo: Topology, node: Node) -> int:
    """Highest for the first controller, lower down the list (distinct, within VRRP's 1..254)."""
    index = [n.name for n in topo.controllers].index(node.name)
    return max(1, TOP_PRIORITY - PRIORITY_STEP * index)


def vips(topo: Topology) -> list[str]:
    net = topo.network
    out = [f"{net.vip}/{net.management.prefixlen} dev {net.interface}"]
    if net.public is not None:
        out.append(f"{net.public.vip}/{net.public.cidr.prefixlen} dev {net.public.interface}")
    return out


def dropin(topo: Topology) -> str:
    """keepalived killed (kill -9, the OOM killer, the guard) leaves its VIPs on the interface while a
    backup takes them: the VIP would be on two nodes until someone restarts it. systemd runs
    ExecStopPost however the service ended, so the addresses go with the process, and it is back
    (as a backup: nopreempt) a second later. `-`: an address already gone is not an error."""
    dels = "".join(f"ExecStopPost=-/bin/ip -4 addr del {v}\n" for v in vips(topo))
    # `vrrp_no_swap` is mlockall(MCL_FUTURE): under the default 8 MiB lock limit a later allocation
    # past it would fail; the VRRP process stays at a few MiB.
    lock = "LimitMEMLOCK=infinity\n" if topo.tuning.keepalived.rt_priority else ""
    # keepalived pulls its quorum watch in (a manual start included) and starts after it.
    return (f"# {HEADER}\n[Unit]\nWants={QUORUM_UNIT}.service\nAfter={QUORUM_UNIT}.service\n\n"
            f"[Service]\nRestart=on-failure\nRestartSec=1\n{lock}{dels}")


def guard_unit() -> str:
    return (f"# {HEADER}\n"
            "[Unit]\nDescription=hastack: kill a frozen keepalived so its VIP is released (vip_guard)\n"
            f"After={UNIT}.service\n\n"
            f"[Service]\nType=simple\nExecStart=/usr/bin/python3 {GUARD_PROGRAM}\n"
            "Restart=always\nRestartSec=2\n\n"
            "[Install]\nWantedBy=multi-user.target\n")


def check_interval(topo: Topology) -> int:
    """keepalived 2.2.7 takes whole seconds (1..4294) for a vrrp_script interval (the model only
    accepts those). Node and link failures do not wait for it (VRRP adverts miss after
    3 x advert_int); only a dead HAProxy on a live node is seen at this pace."""
    return topo.tuning.keepalived.check_interval


def check_command(topo: Topology, node: Node) -> str:
    """curl gives up before keepalived's timeout (= interval), so a hung HAProxy reads as a failure."""
    url = f"{topo.api_scheme}://{node.address}:{haproxy.STATS_PORT}{haproxy.MONITOR_URI}"
    ca = f" --cacert {pki.CA_PATH}" if topo.network.tls else ""
    return f"/usr/bin/curl -sf -o /dev/null -m {check_interval(topo) * 0.8:g}{ca} {url}"


def voters(topo: Topology) -> list[Node]:
    """Galera's votes: every controller, and the arbitrators that run garbd."""
    return topo.controllers + topo.garbd_nodes


def quorum_timing(topo: Topology) -> tuple[float, float]:
    """(EVERY, WINDOW) of the quorum watch from advert_int: the isolated node is in FAULT at most
    EVERY + WINDOW = 1.75 x advert_int after a cut, before the other side takes over (at the earliest
    2.26 x advert_int after it: 3 intervals and the skew after an advert sent up to one interval
    earlier); a peer counts as gone after six silent probes."""
    advert = topo.tuning.keepalived.advert_int
    return round(max(advert / 4, 0.005), 4), round(advert * 1.5, 4)


def quorum_command(topo: Topology, node: Node) -> str:
    """Each vote is probed on Galera's group port: the one port every vote must reach anyway (a
    firewall that drops it breaks Galera too), and its kernel answers whether mariadbd or garbd runs
    or not. The path is a constant, the timings numbers, addresses validated IPs and the port an int:
    nothing here needs quoting."""
    votes = voters(topo)
    need = len(votes) // 2 + 1
    every, window = quorum_timing(topo)
    peers = " ".join(f"{n.address}:{galera.GALERA_PORT}" for n in votes if n.name != node.name)
    return f"/usr/bin/python3 {QUORUM_PROGRAM} {QUORUM_FILE} {every:g} {window:g} {need} {peers}".rstrip()


def quorum_unit(topo: Topology, node: Node) -> str:
    """Realtime like keepalived's VRRP process: a probe loop that is not scheduled for a window on a
    loaded node would read as a lost quorum and move the VIP."""
    rt = topo.tuning.keepalived.rt_priority
    sched = f"CPUSchedulingPolicy=rr\nCPUSchedulingPriority={rt}\n" if rt else ""
    return (f"# {HEADER}\n"
            "[Unit]\nDescription=hastack: the quorum keepalived tracks: this controller sees a majority of "
            "Galera's votes (vip_quorum)\n"
            f"Before={UNIT}.service\n"
            "# Never given up on: while it is down its last verdict stays in the file keepalived reads.\n"
            "StartLimitIntervalSec=0\n\n"
            f"[Service]\nType=simple\nExecStart={quorum_command(topo, node)}\n"
            f"Restart=always\nRestartSec=1\n{sched}\n"
            "[Install]\nWantedBy=multi-user.target\n")


def config(topo: Topology, node: Node) -> str:
    return template(
        "keepalived/keepalived.conf.j2", node=node, k=topo.tuning.keepalived, script_user=SCRIPT_USER,
        check_command=check_command(topo, node), check_interval=check_interval(topo), instance=INSTANCE,
        quorum_file=QUORUM_FILE,
        interface=topo.network.interface, priority=priority(topo, node),
        peers=[n for n in topo.controllers if n.name != node.name], vips=vips(topo),
    )


class Keepalived:
    name = "keepalived"

    def applies(self, topo: Topology, node: Node) -> bool:
        return node.has("controller")

    def packages(self, topo: Topology, node: Node) -> list[str]:
        return ["keepalived", "curl"]

    def units(self, topo: Topology, node: Node) -> list[str]:
        # The VIP stage starts the quorum watch before keepalived and the guard after it. Status reads
        # keepalived only: its recorded test cases (tests/unit/recorded/status) hold one `systemctl
        # show` block per unit listed here, so reading the two safety units needs them re-recorded.
        return [UNIT]

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        return [
            File(CONF, config(ctx.topo, node), restarts=(UNIT,)),
            File(DROPIN, dropin(ctx.topo), restarts=(UNIT,)),
            File(GUARD_PROGRAM, Path(guard.__file__).read_bytes(), mode=0o755, restarts=(GUARD_UNIT,)),
            File(GUARD_UNIT_FILE, guard_unit(), restarts=(GUARD_UNIT,)),
            File(QUORUM_PROGRAM, Path(quorum.__file__).read_bytes(), mode=0o755, restarts=(QUORUM_UNIT,)),
            File(QUORUM_UNIT_FILE, quorum_unit(ctx.topo, node), restarts=(QUORUM_UNIT,)),
        ]


COMPONENT = Keepalived()
