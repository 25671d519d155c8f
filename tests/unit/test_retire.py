"""`hastack retire NODE` (deploy/retire.py) against a scripted transport: what it refuses before
touching anything, and the order in which it takes a controller and a network node out."""

from __future__ import annotations

import asyncio

import pytest
from recordings import load
from test_deploy import SYNCED, _cluster, make

from conftest import watching
from hastack.components import galera, haproxy
from hastack.deploy import retire
from hastack.deploy.engine import StepFailed
from hastack.facts import cluster_status, crm_mon, galera_status
from hastack.topology.model import Topology
from hastack.transport.fake import Script, on_fact, on_regex

BROKERS = ["rabbit@ctl-1", "rabbit@ctl-2", "rabbit@ctl-3"]


def whole(host: str, size: int = 3) -> Script:
    """A whole cluster as `host` sees it: Galera Synced with `size` votes, every broker running."""
    return Script().add(
        on_fact(galera_status(), host=host, stdout=SYNCED.replace("size\t3", f"size\t{size}"), times=None),
        on_fact(cluster_status(), host=host, stdout=_cluster(BROKERS, BROKERS), times=None))


def quiet(monkeypatch: pytest.MonkeyPatch, holders: list[str]) -> None:
    """No session left on the node's servers; the VIP where `holders` says."""
    async def none(*a: object) -> int:
        return 0

    async def vip(d: object) -> list[str]:
        return holders

    monkeypatch.setattr(retire.drain, "sessions", none)
    monkeypatch.setattr(retire, "vip_holders", vip)


def commands(s: Script) -> list[tuple[str, str]]:
    """(host, what) of every change: admin-socket lines and systemctl/rabbitmq/crm commands."""
    out = []
    for c in s.calls:
        if c.kind != "run":
            continue
        if c.argv[:2] == ("python3", "-c") and "admin.sock" in " ".join(c.argv):
            out.append((c.host, c.argv[-1]))
        elif c.argv[0] in ("systemctl", "rabbitmq-upgrade", "crm"):
            out.append((c.host, " ".join(c.argv)))
    return out


def test_a_controller_leaves_writes_first_vip_next_then_broker_then_galera(
        seed: Topology, monkeypatch: pytest.MonkeyPatch) -> None:
    quiet(monkeypatch, ["ctl-1"])
    s = whole("ctl-2").add(on_regex(r".*", times=None))
    d = make(seed, s)
    asyncio.run(retire.retire(d, seed.node("ctl-2")))
    done = commands(s)
    apis = "; ".join(f"set server {a.name}/ctl-2 state drain" for a in haproxy.apis(seed))
    assert done[:3] == [(b, apis) for b in ("ctl-1", "ctl-2", "ctl-3")]
    galera_out = f"set server {haproxy.GALERA_PROXY}/ctl-2 state maint; shutdown sessions server " \
                 f"{haproxy.GALERA_PROXY}/ctl-2"
    assert done[3:6] == [(b, galera_out) for b in ("ctl-1", "ctl-2", "ctl-3")]
    on_node = [w for h, w in done[6:] if h == "ctl-2"]
    assert on_node[0] == "systemctl disable --now --quiet hastack-vip-guard keepalived hastack-vip-quorum"
    services = on_node[1].split()
    assert "keystone" in services and "haproxy" in services and "memcached" in services
    assert "rabbitmq-server" not in services and "mariadb" not in services
    assert on_node[2:] == ["rabbitmq-upgrade --timeout 120 drain",
                           "systemctl disable --now --quiet hastack-rabbit-peers rabbitmq-server",
                           f"systemctl disable --now --quiet {galera.CHECK_SOCKET} {galera.CHECK_SERVICE} mariadb"]
    assert all(h == "ctl-2" for h, _ in done[6:])


def test_a_network_node_in_standby_first_then_its_stack(seed: Topology, monkeypatch: pytest.MonkeyPatch) -> None:
    healthy = load("crm_mon", "lab-healthy").stdout  # the agents on net-1
    s = Script().add(on_fact(crm_mon(), stdout=healthy, times=None), on_regex(r".*", times=None))
    d = make(seed, s)
    asyncio.run(retire.retire(d, seed.node("net-2")))
    done = commands(s)
    assert done[0] == ("net-1", "crm node standby net-2")
    assert done[1] == ("net-2", "systemctl disable --now --quiet pacemaker corosync-qdevice corosync")
    assert [h for h, _ in done[1:]] == ["net-2"] * (len(done) - 1)  # its L2 agent and watchdog last
    assert done[-1][1].startswith("systemctl disable --now --quiet ") and done[-1][1].endswith(" hastack-rabbit-peers")
    s = Script().add(on_fact(crm_mon(), stdout=healthy, times=None), on_regex(r".*", times=None))
    asyncio.run(retire.retire(make(watching(seed, 0), s), seed.node("net-2")))
    assert "hastack-rabbit-peers" not in commands(s)[-1][1]  # turned off: no watch to stop


def test_refused_when_a_peer_is_already_missing_and_nothing_is_touched(seed: Topology) -> None:
    s = whole("ctl-2", size=2).add(on_regex(r".*", times=None))
    d = make(seed, s)
    with pytest.raises(StepFailed) as exc:
        asyncio.run(retire.retire(d, seed.node("ctl-2")))
    assert exc.value.code == "RETIRE-CLUSTER-NOT-WHOLE" and "2 of 3 votes" in exc.value.detail
    assert commands(s) == []


def test_the_quorum_device_and_the_only_controller_are_refused(seed: Topology) -> None:
    d = make(seed, Script())
    assert retire.refusals(d, seed.node("ctl-3")) and "qnetd" in retire.refusals(d, seed.node("ctl-3"))[0]
    assert retire.refusals(d, seed.node("ctl-2")) == []
    lines = retire.plan(d, seed.node("ctl-2"))
    assert any("maintenance mode" in ln for ln in lines) and "hastack deploy" in lines[-1]
