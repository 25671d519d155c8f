"""Lab tier: the lab itself on real containers (tests/lab/small.yml: three nodes, no deployment).

One lab for the whole session. Tests that break something put it back before they end; the
teardown test (`lab down` leaves nothing behind) runs last.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from hastack.lab import Lab, cgroup, state

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
    pytest.mark.skipif(shutil.which("systemd-nspawn") is None, reason="systemd-nspawn missing"),
]

SMALL = Path(__file__).resolve().parent / "small.yml"
NODES = ("ctl-1", "net-1", "net-2")


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The small topology copied out of the source tree (its ssh files land there), up once."""
    topo = tmp_path_factory.mktemp("small") / "small.yml"
    topo.write_text(SMALL.read_text())
    the_lab = Lab.load(topo)
    the_lab.up()
    yield the_lab
    the_lab.down()


def run(lab: Lab, node: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return lab.run(node, list(argv), timeout=60)


def banner(addr: str) -> bool:
    try:
        with socket.create_connection((addr, 22), timeout=1) as s:
            s.settimeout(1)
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def wait(predicate: object, timeout: float = 30) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_systemd_runs_on_every_node(lab: Lab) -> None:
    for node in NODES:
        res = run(lab, node, "systemctl", "is-system-running", "--wait")
        assert res.stdout.strip() in ("running", "degraded"), (node, res.stdout, res.stderr)


def test_each_node_has_its_own_name_address_and_identity(lab: Lab) -> None:
    ids = set()
    for node in NODES:
        assert run(lab, node, "hostname").stdout.strip() == node
        addrs = json.loads(run(lab, node, "ip", "-j", "-4", "addr", "show", "dev", "eth0").stdout)
        assert [a["local"] for a in addrs[0]["addr_info"]] == [lab.address(node)]
        ids.add(run(lab, node, "cat", "/etc/machine-id").stdout.strip())
        ids.add(run(lab, node, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1])
    assert len(ids) == 2 * len(NODES)


def test_nodes_reach_each_other(lab: Lab) -> None:
    for node in NODES:
        for peer in NODES:
            res = run(lab, node, "ping", "-c1", "-W2", lab.address(peer))
            assert res.returncode == 0, (node, peer, res.stdout)


@pytest.mark.skipif(shutil.which("ssh") is None, reason="openssh-client missing")
def test_host_reaches_every_node_over_ssh_with_real_host_keys(lab: Lab) -> None:
    assert oct(lab.key_path.stat().st_mode & 0o777) == "0o600"
    for node in NODES:
        res = subprocess.run(lab.ssh_argv(node, ["hostname"]), capture_output=True, text=True, timeout=30)
        assert (res.returncode, res.stdout.strip()) == (0, node), res.stderr


def test_nothing_routes_beyond_the_bridge(lab: Lab) -> None:
    routes = json.loads(run(lab, "ctl-1", "ip", "-j", "route", "show").stdout)
    assert all(r["dst"] != "default" for r in routes)
    host_addrs = [a["local"] for link in json.loads(subprocess.run(["ip", "-j", "-4", "addr"],
                  capture_output=True, text=True).stdout) if link["ifname"] not in ("lo", lab.state.bridge)
                  for a in link["addr_info"]]
    lab_net = ipaddress.IPv4Interface(lab.state.host_address).network
    for target in [a for a in host_addrs if ipaddress.IPv4Address(a) not in lab_net][:2] + ["192.0.2.1"]:
        res = run(lab, "ctl-1", "ping", "-c1", "-W1", target)
        assert res.returncode != 0, target
    assert run(lab, "ctl-1", "ping", "-c1", "-W2", lab.state.host_address.split("/")[0]).returncode == 0


def test_power_off_kills_everything_and_on_boots_the_same_disk(lab: Lab) -> None:
    run(lab, "net-2", "sh", "-c", "echo kept > /root/disk-test")
    machine_id = run(lab, "net-2", "cat", "/etc/machine-id").stdout
    cg = lab.state.nodes["net-2"].cgroup
    assert lab.power("net-2", "off") == "off"
    assert cgroup.pids(cg) == [] and lab.status("net-2") == "off"
    assert not banner(lab.address("net-2"))
    assert run(lab, "net-1", "ping", "-c1", "-W1", lab.address("net-2")).returncode != 0
    assert lab.power("net-2", "on") == "on"
    lab.wait_ssh(["net-2"], timeout=60)
    assert run(lab, "net-2", "cat", "/root/disk-test").stdout == "kept\n"
    assert run(lab, "net-2", "cat", "/etc/machine-id").stdout == machine_id
    assert run(lab, "net-1", "ping", "-c1", "-W2", lab.address("net-2")).returncode == 0


def test_fence_agent_from_another_node(lab: Lab) -> None:
    meta = run(lab, "net-1", "stonith_admin", "--metadata", "-a", "fence_hastack")
    assert ET.fromstring(meta.stdout).get("name") == "fence_hastack"
    assert run(lab, "net-1", "fence_hastack", "-o", "status", "-n", "net-2").returncode == 0
    listing = run(lab, "net-1", "fence_hastack", "-o", "list").stdout.split()
    assert listing == [f"{n}," for n in sorted(NODES)]
    off = lab.run("net-1", ["fence_hastack"], input="action=off\nplug=net-2\n")
    assert off.returncode == 0, off.stderr
    assert lab.status("net-2") == "off"
    assert run(lab, "net-1", "fence_hastack", "-o", "status", "-n", "net-2").returncode == 2
    assert run(lab, "net-1", "fence_hastack", "-o", "on", "-n", "net-2").returncode == 0
    lab.wait_ssh(["net-2"], timeout=60)
    assert run(lab, "net-1", "fence_hastack", "-o", "reboot", "--plug=net-2").returncode == 0
    lab.wait_ssh(["net-2"], timeout=60)


def test_cut_toward_one_peer_then_all_links_then_heal(lab: Lab) -> None:
    a, b, c = (lab.address(n) for n in NODES)
    lab.cut("net-2", ["net-1"])
    try:
        assert run(lab, "net-1", "ping", "-c1", "-W1", c).returncode != 0
        assert run(lab, "ctl-1", "ping", "-c1", "-W2", c).returncode == 0
        lab.cut("net-2")
        assert run(lab, "ctl-1", "ping", "-c1", "-W1", c).returncode != 0
        assert not banner(c)
        assert lab.status("net-2") == "on"  # a cut is not a power loss
    finally:
        lab.heal("net-2")
    assert lab.state.cuts == []
    assert wait(lambda: run(lab, "net-1", "ping", "-c1", "-W1", c).returncode == 0)
    assert banner(c) and banner(a) and banner(b)


def test_freeze_stops_the_node_and_thaw_resumes_it(lab: Lab) -> None:
    lab.freeze("ctl-1")
    try:
        assert cgroup.is_frozen(lab.state.nodes["ctl-1"].cgroup)
        assert not banner(lab.address("ctl-1"))  # sshd cannot answer
    finally:
        lab.thaw("ctl-1")
    assert wait(lambda: banner(lab.address("ctl-1")))


def test_kill_service_kills_only_that_nodes_unit(lab: Lab) -> None:
    def main_pid(node: str) -> str:
        return run(lab, node, "systemctl", "show", "-P", "MainPID", "ssh").stdout.strip()

    before = {n: main_pid(n) for n in NODES}
    assert lab.kill_service("ctl-1", "ssh", "KILL").returncode == 0
    assert wait(lambda: main_pid("ctl-1") not in ("0", before["ctl-1"]))  # Restart=on-failure
    assert {n: main_pid(n) for n in ("net-1", "net-2")} == {n: before[n] for n in ("net-1", "net-2")}


def test_cli_power_and_ls(lab: Lab) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hastack.cli.main", "lab", *args], capture_output=True,
                              text=True, timeout=120)

    assert "small" in cli("ls").stdout
    res = cli("power", "net-1", "reset", "-t", str(lab.path))
    assert res.returncode == 0 and "net-1: on" in res.stdout
    lab.wait_ssh(["net-1"], timeout=60)
    bad = cli("power", "nope", "off", "-t", str(lab.path))
    assert bad.returncode == 1 and "no node 'nope'" in bad.stderr and "Traceback" not in bad.stderr


def test_usage_measures_each_node(lab: Lab) -> None:
    """Memory and CPU come from each node's own processes: a node kept busy shows the CPU."""
    busy = subprocess.Popen(lab.ssh_argv("ctl-1", ["timeout 4 sh -c 'while :; do :; done'"]))
    try:
        res = subprocess.run([sys.executable, "-m", "hastack.cli.main", "lab", "usage", "-t", str(lab.path),
                              "--seconds", "2"], capture_output=True, text=True, timeout=60)
    finally:
        busy.wait(timeout=30)
    assert res.returncode == 0, res.stderr
    rows = {r.split("│")[1].strip(): r.split("│")[2:4] for r in res.stdout.splitlines() if r.count("│") == 4}
    assert set(NODES) <= set(rows), res.stdout
    for n in NODES:
        assert float(rows[n][0]) > 1  # MiB: systemd, journald, sshd at least
    assert float(rows["ctl-1"][1]) > 40 > float(rows["net-2"][1]), res.stdout  # % of one core


def test_reboot_inside_a_node_boots_it_again(lab: Lab) -> None:
    before = lab.state.nodes["net-1"].pid
    run(lab, "net-1", "systemctl", "reboot")
    assert wait(lambda: lab.state.nodes["net-1"].pid not in (before, None), timeout=60)
    lab.wait_ssh(["net-1"], timeout=60)
    assert lab.status("net-1") == "on"


def test_zz_down_leaves_no_namespace_bridge_mount_or_process(lab: Lab) -> None:
    st = lab.state
    leaders = [p for n in st.nodes.values() for p in cgroup.pids(n.cgroup)]
    assert leaders
    lab.down()
    lab.down()  # idempotent
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    for n in st.nodes.values():
        assert n.netns not in netns and n.veth_host not in links
        assert not (state.CGROUP_V2 / n.cgroup).exists()
    assert st.bridge not in links
    assert not any(Path(f"/proc/{p}").exists() for p in leaders)
    assert "labs/small" not in Path("/proc/self/mountinfo").read_text()
    assert not Path(st.run_dir).exists() and state.read("small") is None
    nft = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert st.nft_table not in nft
