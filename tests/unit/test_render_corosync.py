"""corosync.conf, authkey and qnetd options: asserted on the parsed structure, not on wording."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import pytest

from conftest import replace_node
from hastack.components import corosync
from hastack.components.base import Ctx, File
from hastack.components.registry import desired
from hastack.topology.model import FenceDevice, Node, Topology

Section = dict[str, Any]


def parse(text: str) -> Section:
    """corosync.conf -> nested dicts; a repeated section or key becomes a list."""
    root: Section = {}
    stack = [root]
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.endswith("{"):
            child: Section = {}
            _put(stack[-1], line[:-1].strip(), child)
            stack.append(child)
        elif line == "}":
            stack.pop()
        else:
            key, value = line.split(":", 1)
            _put(stack[-1], key.strip(), value.strip())
    assert len(stack) == 1, "unbalanced braces"
    return root


def _put(section: Section, key: str, value: Any) -> None:
    if key in section:
        prev = section[key]
        section[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
    else:
        section[key] = value


def nodes_of(conf: Section) -> list[Section]:
    n = conf["nodelist"]["node"]
    return n if isinstance(n, list) else [n]


def variant(base: Topology, networks: int, qnetd: bool, delay: int = 0) -> Topology:
    """base's controllers, `networks` fenced network nodes, an arbitrator on ctl-3 or none."""
    ctl = [n.model_copy(update={"roles": ["controller"]}) for n in base.controllers]
    if qnetd:
        ctl[-1] = ctl[-1].model_copy(update={"roles": ["controller", "arbitrator"]})
    nets = [Node(name=f"net-{i}", address=ipaddress.IPv4Address(f"10.77.0.{20 + i}"), roles=["network"],
                 fencing=FenceDevice(agent="fence_hastack", params={"plug": f"net-{i}"}))
            for i in range(1, networks + 1)]
    tuning = base.tuning.model_copy(update={
        "corosync": base.tuning.corosync.model_copy(update={"priority_fencing_delay_s": delay})})
    return base.model_copy(update={"nodes": ctl + nets, "tuning": tuning})


def conf_of(topo: Topology) -> Section:
    return parse(corosync.corosync_conf(topo))


def files_of(ctx: Ctx, node: str) -> dict[str, File]:
    return {f.path: f for f in desired(ctx)[node].files}


def test_totem_knet_crypto_and_token(seed: Topology) -> None:
    totem = conf_of(seed)["totem"]
    assert totem["version"] == "2" and totem["cluster_name"] == seed.name
    assert totem["transport"] == "knet"
    assert (totem["crypto_cipher"], totem["crypto_hash"]) == ("aes256", "sha256")
    assert int(totem["token"]) == seed.tuning.corosync.token
    assert int(totem["token_coefficient"]) == seed.tuning.corosync.token_coefficient


@pytest.mark.parametrize("count", [2, 3, 5])
def test_nodeids_are_the_addresses_low_16_bits(seed: Topology, count: int) -> None:
    topo = variant(seed, count, qnetd=False, delay=5)
    nodes = nodes_of(conf_of(topo))
    assert [int(n["nodeid"]) for n in nodes] == [20 + i for i in range(1, count + 1)]  # 10.77.0.21 ...
    assert [n["name"] for n in nodes] == [n.name for n in topo.network_nodes]
    assert [n["ring0_addr"] for n in nodes] == [str(n.address) for n in topo.network_nodes]
    wide = topo.model_copy(update={"nodes": [n.model_copy(update={"address": ipaddress.IPv4Address("10.1.255.254")})
                                             if n.name == "net-1" else n for n in topo.nodes]})
    assert corosync.node_ids(wide)["net-1"] == 65534  # the largest id knet takes


def test_nodeids_stay_when_a_network_node_is_appended_removed_or_replaced(seed: Topology) -> None:
    """A replaced node gets an id of its own: by position it would inherit the dead one's, which a
    running corosync cannot reload and Pacemaker still keys to the dead node."""
    before = corosync.node_ids(variant(seed, 3, qnetd=True))
    assert all(corosync.node_ids(variant(seed, 4, qnetd=True))[name] == nid for name, nid in before.items())
    replaced = replace_node(variant(seed, 3, qnetd=True), "net-2", "net-9", "10.77.0.29")
    after = corosync.node_ids(replaced)
    assert after == {"net-1": before["net-1"], "net-9": 29, "net-3": before["net-3"]}
    assert after["net-9"] not in before.values()


def test_qdevice_only_with_a_qnetd_node(seed: Topology) -> None:
    quorum = conf_of(seed)["quorum"]
    assert quorum["provider"] == "corosync_votequorum"
    dev = quorum["device"]
    assert dev["model"] == "net" and dev["votes"] == "1"
    assert dev["net"]["host"] == str(seed.node("ctl-3").address)
    assert dev["net"]["algorithm"] == "ffsplit" and dev["net"]["tls"] in {"on", "required"}
    assert "two_node" not in quorum
    for count in (2, 3):
        assert "device" not in conf_of(variant(seed, count, qnetd=False, delay=5))["quorum"]


def test_odd_member_count_with_qnetd_uses_lms_without_fixed_votes(seed: Topology) -> None:
    dev = conf_of(variant(seed, 3, qnetd=True))["quorum"]["device"]
    assert dev["net"]["algorithm"] == "lms" and "votes" not in dev


def test_two_node_only_with_two_members_and_no_qdevice(seed: Topology) -> None:
    assert conf_of(variant(seed, 2, qnetd=False, delay=5))["quorum"]["two_node"] == "1"
    assert "two_node" not in conf_of(variant(seed, 2, qnetd=True))["quorum"]
    assert "two_node" not in conf_of(variant(seed, 3, qnetd=False))["quorum"]


def test_logging_goes_to_syslog_and_a_file(seed: Topology) -> None:
    log = conf_of(seed)["logging"]
    assert log["to_syslog"] == "yes" and log["to_logfile"] == "yes" and log["logfile"].startswith("/var/log/")


def test_authkey_is_256_bytes_identical_on_every_member(seed: Topology,
                                                        ctx_of: Callable[[Topology], Ctx]) -> None:
    ctx = ctx_of(seed)
    keys = [files_of(ctx, n.name)[corosync.AUTHKEY] for n in seed.network_nodes]
    assert len(keys) == 2
    for key in keys:
        assert isinstance(key.content, bytes) and len(key.content) == 256
        assert (key.mode, key.owner, key.group, key.secret) == (0o400, "root", "root", True)
        assert key.content == keys[0].content and "corosync" in key.restarts


def test_conf_identical_on_every_member_and_reloaded_not_restarted(four: Topology,
                                                                   ctx_of: Callable[[Topology], Ctx]) -> None:
    """A restart of corosync takes Pacemaker down with it: deploy reloads a changed corosync.conf
    (corosync.RELOAD) instead; only a new authkey restarts corosync."""
    ctx = ctx_of(four)
    confs = [files_of(ctx, n.name)[corosync.CONF] for n in four.network_nodes]
    assert len({c.data for c in confs}) == 1
    assert all(c.restarts == () and not c.secret for c in confs)
    keys = [files_of(ctx, n.name)[corosync.AUTHKEY] for n in four.network_nodes]
    assert all(k.restarts == ("corosync",) for k in keys)


def test_qnetd_host_gets_options_and_unit_members_get_qdevice(seed: Topology,
                                                             ctx_of: Callable[[Topology], Ctx]) -> None:
    state = desired(ctx_of(seed))
    qnetd = state["ctl-3"]
    assert "corosync-qnetd" in qnetd.units and "corosync-qnetd" in qnetd.packages
    (opts,) = [f for f in qnetd.files if f.path == corosync.QNETD_DEFAULTS]
    assert f"-l {seed.node('ctl-3').address}" in opts.data.decode() and "-s req " in opts.data.decode()
    for name in ("net-1", "net-2"):
        assert {"corosync", "corosync-qdevice", "pacemaker"} <= set(state[name].units)
        assert "corosync-qnetd" not in state[name].packages
    for name in ("ctl-1", "ctl-2", "cmp-1"):
        paths = {f.path for f in state[name].files}
        assert not paths & {corosync.CONF, corosync.AUTHKEY, corosync.QNETD_DEFAULTS}


def test_no_qdevice_unit_without_qnetd(seed: Topology, ctx_of: Callable[[Topology], Ctx]) -> None:
    state = desired(ctx_of(variant(seed, 2, qnetd=False, delay=5)))
    assert "corosync-qdevice" not in state["net-1"].units
    assert not any("corosync-qnetd" in d.units for d in state.values())


def test_tls_steps_give_every_member_the_ca_and_one_shared_client_cert(seed: Topology) -> None:
    assert corosync.qdevice_tls_steps(variant(seed, 2, qnetd=False, delay=5)) == []
    topo = variant(seed, 3, qnetd=True)
    steps = corosync.qdevice_tls_steps(topo)
    runs = [s for s in steps if isinstance(s, corosync.Run)]
    assert runs[0].host == "ctl-3" and runs[0].argv[:2] == ("corosync-qnetd-certutil", "-i")
    init = [r.host for r in runs if r.argv[:2] == ("corosync-qdevice-net-certutil", "-i")]
    assert init == ["net-1", "net-2", "net-3"]
    assert [r.host for r in runs if "-r" in r.argv] == ["net-1"]
    assert [r.host for r in runs if "-s" in r.argv] == ["ctl-3"]
    assert [r.host for r in runs if "-m" in r.argv] == ["net-2", "net-3"]
    assert all(topo.name in r.argv for r in runs if "-r" in r.argv or "-s" in r.argv)
