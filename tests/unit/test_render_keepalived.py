"""keepalived: VRRPv3 without authentication, unicast between controllers, nopreempt, distinct
priorities, tracking this node's own HAProxy."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from hastack.components import keepalived
from hastack.components.base import Ctx
from hastack.topology.model import KeepalivedTuning, Network, Node, PublicNetwork, Topology

CtxOf = Callable[[Topology], Ctx]


def conf(ctx: Ctx, node: Node) -> str:
    [f] = [f for f in keepalived.COMPONENT.files(ctx, node) if f.path == keepalived.CONF]
    assert f.restarts == ("keepalived",)
    return f.data.decode()


def block(text: str, head: str) -> str:
    """The body of `head { ... }` (nested braces included)."""
    start = text.index(head + " {") + len(head) + 2
    depth, i = 1, start
    while depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[start:i - 1]


def values(body: str, key: str) -> list[str]:
    return re.findall(rf"^\s*{re.escape(key)}\s+(.+?)\s*$", body, re.M)


def code(text: str) -> str:
    return "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))


def test_vrrp_v3_without_authentication(seed: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(seed)
    for node in seed.controllers:
        text = code(conf(ctx, node))
        assert values(block(text, "global_defs"), "vrrp_version") == ["3"]
        assert "authentication" not in text and "auth_pass" not in text
        assert ctx.secrets.password("keepalived/auth") not in text


def test_unicast_to_the_other_controllers(seed: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(seed)
    for node in seed.controllers:
        inst = block(code(conf(ctx, node)), "vrrp_instance hastack_vip")
        assert values(inst, "unicast_src_ip") == [str(node.address)]
        peers = block(inst, "unicast_peer").split()
        assert peers == [str(n.address) for n in seed.controllers if n.name != node.name]


def test_all_backup_nopreempt_with_descending_priorities(seed: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(seed)
    prios = []
    for node in seed.controllers:
        inst = block(code(conf(ctx, node)), "vrrp_instance hastack_vip")
        assert values(inst, "state") == ["BACKUP"]
        assert re.search(r"^\s*nopreempt\s*$", inst, re.M)
        prios.append(int(values(inst, "priority")[0]))
    assert prios == sorted(prios, reverse=True) and len(set(prios)) == len(prios)
    assert all(1 <= p <= 254 for p in prios)


def test_vip_and_tuning(seed: Topology, ctx_of: CtxOf) -> None:
    k = KeepalivedTuning(advert_int=0.05, router_id=77, check_interval=2, check_fall=3, check_rise=4)
    topo = seed.model_copy(update={"tuning": seed.tuning.model_copy(update={"keepalived": k})})
    text = code(conf(ctx_of(topo), topo.controllers[0]))
    inst = block(text, "vrrp_instance hastack_vip")
    assert values(inst, "interface") == ["eth0"]
    assert values(inst, "virtual_router_id") == ["77"]
    assert values(inst, "advert_int") == ["0.05"]
    assert block(inst, "virtual_ipaddress").split() == ["10.77.0.10/24", "dev", "eth0"]
    script = block(text, "vrrp_script haproxy")
    assert values(script, "interval") == ["2"]  # keepalived 2.2.7: whole seconds only
    assert values(script, "fall") == ["3"] and values(script, "rise") == ["4"]


def test_check_command_gives_up_before_the_interval(seed: Topology) -> None:
    k = KeepalivedTuning(check_interval=3)
    topo = seed.model_copy(update={"tuning": seed.tuning.model_copy(update={"keepalived": k})})
    assert keepalived.check_interval(topo) == 3
    assert " -m 2.4 " in keepalived.check_command(topo, topo.controllers[0])


def test_tracks_own_haproxy_by_own_address(seed: Topology, ctx_of: CtxOf) -> None:
    ctx = ctx_of(seed)
    for node in seed.controllers:
        text = code(conf(ctx, node))
        script = block(text, "vrrp_script haproxy")
        [cmd] = values(script, "script")
        assert f"--cacert /usr/local/share/ca-certificates/hastack-ca.crt https://{node.address}:8404/healthz" in cmd
        assert cmd.startswith('"/usr/bin/curl ') and " -sf " in cmd
        assert block(block(text, "vrrp_instance hastack_vip"), "track_script").split() == ["haproxy"]
        assert block(block(text, "vrrp_instance hastack_vip"), "track_file").split() == ["quorum"]
        gd = block(text, "global_defs")
        assert re.search(r"^\s*enable_script_security\s*$", gd, re.M)
        assert values(gd, "script_user") == ["nobody"]


def unit_of(ctx: Ctx, node: Node) -> str:
    [f] = [f for f in keepalived.COMPONENT.files(ctx, node) if f.path == keepalived.QUORUM_UNIT_FILE]
    assert f.restarts == (keepalived.QUORUM_UNIT,)
    return f.data.decode()


def test_quorum_watch_counts_galera_votes(seed: Topology, four: Topology, ctx_of: CtxOf) -> None:
    """Seed: three controllers, a majority is 2. Four servers: two controllers and garbd on net-1 (the
    arbitrator), so a controller that sees only net-1 keeps its claim to the VIP."""
    for topo, expect in ((seed, {"ctl-1": ["10.77.0.12:4567", "10.77.0.13:4567"]}),
                         (four, {"ctl-1": ["10.78.0.12:4567", "10.78.0.21:4567"],
                                 "ctl-2": ["10.78.0.11:4567", "10.78.0.21:4567"]})):
        for name, peers in expect.items():
            unit = unit_of(ctx_of(topo), topo.node(name))
            [line] = [ln for ln in unit.splitlines() if ln.startswith("ExecStart=")]
            assert line.removeprefix("ExecStart=").split() == [
                "/usr/bin/python3", keepalived.QUORUM_PROGRAM, keepalived.QUORUM_FILE, "0.025", "0.15", "2", *peers]
            assert "CPUSchedulingPolicy=rr\nCPUSchedulingPriority=50\n" in unit
            track = block(code(conf(ctx_of(topo), topo.node(name))), "track_file quorum")
            assert values(track, "file") == [f'"{keepalived.QUORUM_FILE}"']
            assert values(track, "weight") == ["0"]  # 1 in the file is FAULT
            assert values(track, "init_file") == ["0"]  # a lone first controller after a full outage may start


def test_quorum_watch_decides_before_the_other_side_takes_over(seed: Topology) -> None:
    """The isolated node's FAULT (EVERY + WINDOW after the cut at the worst) comes before the
    others' takeover (3 x advert_int + skew after the last advert, sent up to one interval before
    the cut: 2.26 x advert_int at the earliest), whatever advert_int is."""
    for advert in (0.05, 0.1, 0.3, 1.0, 3.0):
        k = KeepalivedTuning(advert_int=advert)
        topo = seed.model_copy(update={"tuning": seed.tuning.model_copy(update={"keepalived": k})})
        every, window = keepalived.quorum_timing(topo)
        assert every + window < 2.26 * advert
        assert window >= 6 * every - 1e-9  # six silent probes before a peer counts as gone


def test_quorum_watch_runs_unprivileged_scheduling_only_when_asked(seed: Topology, ctx_of: CtxOf) -> None:
    k = KeepalivedTuning(rt_priority=0)
    topo = seed.model_copy(update={"tuning": seed.tuning.model_copy(update={"keepalived": k})})
    assert "CPUScheduling" not in unit_of(ctx_of(topo), topo.controllers[0])


def test_keepalived_pulls_its_quorum_watch_in(seed: Topology, ctx_of: CtxOf) -> None:
    [f] = [f for f in keepalived.COMPONENT.files(ctx_of(seed), seed.controllers[0]) if f.path == keepalived.DROPIN]
    text = f.data.decode()
    assert f"Wants={keepalived.QUORUM_UNIT}.service" in text and f"After={keepalived.QUORUM_UNIT}.service" in text


def test_quorum_program_is_shipped_root_owned_and_executable(seed: Topology, ctx_of: CtxOf) -> None:
    [f] = [f for f in keepalived.COMPONENT.files(ctx_of(seed), seed.controllers[0])
           if f.path == keepalived.QUORUM_PROGRAM]
    assert f.mode == 0o755 and f.data.startswith(b"#!/usr/bin/python3")
    assert f.restarts == (keepalived.QUORUM_UNIT,)


def test_public_vip_moves_with_the_internal_one(seed: Topology, ctx_of: CtxOf) -> None:
    net = Network(management=seed.network.management, vip=seed.network.vip, interface="eth0",
                  public=PublicNetwork(cidr=ipaddress.IPv4Network("192.0.2.0/24"),
                                       vip=ipaddress.IPv4Address("192.0.2.10"), interface="eth1"))
    topo = seed.model_copy(update={"network": net})
    text = code(conf(ctx_of(topo), topo.controllers[0]))
    vips = [ln.split() for ln in block(text, "virtual_ipaddress").strip().splitlines()]
    assert vips == [["10.77.0.10/24", "dev", "eth0"], ["192.0.2.10/24", "dev", "eth1"]]
    assert text.count("vrrp_instance") == 1


def test_packages_and_units(seed: Topology) -> None:
    node = seed.controllers[0]
    assert set(keepalived.COMPONENT.packages(seed, node)) == {"keepalived", "curl"}
    assert keepalived.COMPONENT.units(seed, node) == ["keepalived"]
    assert not keepalived.COMPONENT.applies(seed, seed.node("net-1"))


def test_vrrp_runs_realtime_and_locked_unless_tuned_off(seed: Topology, ctx_of: CtxOf) -> None:
    """Default: SCHED_RR 50 + mlockall, and the unit's lock limit lifted so mlockall(MCL_FUTURE) cannot
    make a later allocation fail; rt_priority 0 renders neither (keepalived's own default)."""
    g = block(code(conf(ctx_of(seed), seed.controllers[0])), "global_defs")
    assert values(g, "vrrp_rt_priority") == ["50"] and re.search(r"^\s*vrrp_no_swap\s*$", g, re.M)
    assert "LimitMEMLOCK=infinity" in keepalived.dropin(seed)
    k = seed.tuning.keepalived.model_copy(update={"rt_priority": 0})
    off = seed.model_copy(update={"tuning": seed.tuning.model_copy(update={"keepalived": k})})
    g = block(code(conf(ctx_of(off), off.controllers[0])), "global_defs")
    assert "vrrp_rt_priority" not in g and "vrrp_no_swap" not in g
    assert "LimitMEMLOCK" not in keepalived.dropin(off)
