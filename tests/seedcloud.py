"""Helpers for lab-tier tests of the seed lab's OpenStack, seen the way a client sees it: the real
`openstack` client on the compute node (cmp-1), with a clouds.yaml that names only the VIP."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hastack import pki
from hastack.secrets import Secrets, secrets_path
from hastack.topology.load import load

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGY = ROOT / "examples" / "seed.yml"
VIP = "10.77.0.10"
CONTROLLERS = {"ctl-1": "10.77.0.11", "ctl-2": "10.77.0.12", "ctl-3": "10.77.0.13"}
NETWORK_NODES = ("net-1", "net-2")
AGENT_HOST = "network-agents"
CLOUDS = "/root/.config/openstack/clouds.yaml"
CLIENT = "cmp-1"
T = TypeVar("T")


def hastack(*args: str, timeout: float = 2400, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hastack.cli.main", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout, input=stdin)


def on(node: str, command: str, *, stdin: str | None = None, timeout: float = 180, check: bool = True) -> str:
    """One shell command line on a node (like ssh(1))."""
    res = hastack("lab", "ssh", "-t", str(TOPOLOGY), node, "--", command, stdin=stdin, timeout=timeout)
    if check:
        assert res.returncode == 0, f"{node}: {command}: {res.stdout}{res.stderr}"
    return res.stdout


def clouds_yaml(topology: Path = TOPOLOGY, cloud: str = "hastack") -> str:
    """A clouds.yaml (JSON is YAML) for the admin of the lab of `topology`: Keystone on the VIP, over
    https verified with the cluster's CA (every node has it) unless the topology turned TLS off."""
    topo = load(topology).topology
    assert topo is not None
    secrets = Secrets.load(secrets_path(topology, topo.name))
    return json.dumps({"clouds": {cloud: {
        "auth": {"auth_url": topo.vip_url(5000, "/v3"), "username": "admin", "project_name": "admin",
                 "user_domain_name": "Default", "project_domain_name": "Default",
                 "password": secrets.password("keystone/admin")},
        **({"cacert": pki.CA_PATH} if topo.network.tls else {}),
        "region_name": "RegionOne", "interface": "public", "identity_api_version": 3}}}, indent=2)


def install_clouds_yaml(node: str = CLIENT) -> str:
    # JSON is YAML; written with umask 077 so the password file is 0600 from its first byte
    on(node, f"umask 077 && mkdir -p {Path(CLOUDS).parent} && cat > {CLOUDS}", stdin=clouds_yaml())
    return node


def osc(node: str, *args: str, timeout: float = 180) -> Any:
    out = on(node, shlex.join(["openstack", "--os-cloud", "hastack", *args, "-f", "json"]), timeout=timeout)
    return json.loads(out)


def osc_quietly(node: str, *args: str, timeout: float = 180) -> None:
    """Best-effort clean-up: a missing object is fine."""
    hastack("lab", "ssh", "-t", str(TOPOLOGY), node, "--", shlex.join(["openstack", "--os-cloud", "hastack", *args]),
            timeout=timeout)


def agents_node(ask: str = "net-1") -> str:
    xml = on(ask, "crm_mon -1 --output-as=xml")
    hosts = set(re.findall(r'<resource id="neutron-l3-agent"[^>]*>\s*<node name="([^"]+)"', xml))
    assert len(hosts) == 1, xml
    return str(hosts.pop())


def namespaces(node: str) -> set[str]:
    return set(on(node, "ip netns list | cut -d' ' -f1").split())


def until(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 2.0) -> T:
    """Poll until probe returns something truthy (bounded); a probe that raises counts as not yet."""
    deadline, last = time.monotonic() + timeout, "never answered"
    while True:
        try:
            got = probe()
            if got:
                return got
            last = repr(got)
        except (AssertionError, subprocess.SubprocessError, ValueError) as exc:
            last = str(exc)[-500:]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:.0f}s; last: {last}")
        time.sleep(interval)


def status_healthy(timeout: float = 600) -> str:
    """Bounded polling of `hastack status` until it exits 0 (healthy)."""
    def probe() -> str | None:
        res = hastack("status", str(TOPOLOGY), timeout=120)
        assert res.returncode == 0, res.stdout[-1500:]
        return "healthy"
    return until("hastack status healthy", probe, timeout, interval=5)


def power(node: str, state: str) -> None:
    res = hastack("lab", "power", "-t", str(TOPOLOGY), node, state, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr


def ready_to_build(osc_json: Callable[..., Any], compute: str = CLIENT) -> bool:
    """The cloud's own view says a server can be built on `compute`: its nova-compute is up (the
    scheduler's filter) and every Neutron agent is alive (ML2 binds a port only on a host whose L2
    agent is alive). After a controller's loss both lag the brokers' nodedown by one report period:
    an agent whose reports went through the dead broker may be dead until then (see
    neutron.AGENT_REPORT_INTERVAL_S). An HTTP 503 through the VIP is a "not yet": with one controller
    left, HAProxy takes that busy controller's API out of rotation for a second or two when two checks
    in a row time out (the four-server lab, 2026-12-07: with ctl-1 off, HAProxy marked keystone/ctl-2
    DOWN on a 2 s check timeout, and the client's token request for `compute service list` got 503)."""
    try:
        services = osc_json("compute", "service", "list", "--service", "nova-compute", "--host", compute)
        agents = osc_json("network", "agent", "list")
    except AssertionError as exc:
        if "(HTTP 503)" in str(exc):
            return False
        raise
    return bool(services) and all(s["State"] == "up" for s in services) and all(a["Alive"] for a in agents)



def create_server(raw_osc: Callable[..., str], name: str, *args: str) -> dict[str, Any]:
    """`server create --wait` (its arguments: flavor, image, network) through `raw_osc` (the client's
    text output). osc prints only "Error creating server" when the server went to ERROR: the
    assertion then carries the server's status and fault."""
    out = raw_osc("server", "create", *args, "--wait", name, "-f", "json", timeout=420)
    if not out.lstrip().startswith("{"):
        why = raw_osc("server", "show", name, "-c", "status", "-c", "fault", "-f", "json", timeout=120)
        raise AssertionError(f"{out.strip()}: {why}")
    server: dict[str, Any] = json.loads(out)
    return server


def osc_text(node: str, *args: str, timeout: float = 180) -> str:
    """The `openstack` client's text output on `node` (the seed lab's admin cloud)."""
    return on(node, shlex.join(["openstack", "--os-cloud", "hastack", *args]), timeout=timeout)


def amqp_connections(run_on: Callable[[str, str], str], address: str, nodes: list[str]) -> dict[str, int]:
    """Each node's ESTABLISHED connections to a broker's AMQP port (read before a fault)."""
    from hastack.components.rabbitmq import AMQP_PORT

    command = f"ss -H -t -n state established dst {address} dport = :{AMQP_PORT}"
    return {n: len(run_on(n, command).splitlines()) for n in nodes}


def clients_cut_from(run_on: Callable[[str, str], str], victim: str, address: str, had: dict[str, int],
                     since: int) -> None:
    """A silent broker's host, seen from every surviving host of the dead-peer watch (`had`: their
    connections to it, counted before the fault): its journal names the victim (dropped on a broker,
    silent elsewhere); where connections were there, the watch says it cut them (at least one host:
    a connection may also have ended on its own meanwhile); then no survivor keeps one. The services'
    clients were moved to a live broker instead of waiting for their heartbeat (README, "A dead
    broker dropped in seconds")."""
    from hastack.components.rabbitmq import AMQP_PORT, PEERS_UNIT

    def journal(n: str) -> str:
        return run_on(n, f"journalctl -u {PEERS_UNIT} -o cat --no-pager --since @{since}")

    said = re.compile(rf"(dropped rabbit@{victim} |rabbit@{victim} \({re.escape(address)}\) silent for )")
    for n in had:
        until(f"{n}'s watch counts rabbit@{victim} dead", lambda n=n: said.search(journal(n)), 60, interval=1)
    cut = re.compile(rf"^cut \d+ connections? to rabbit@{victim}'s AMQP port", re.M)
    if holders := [n for n, count in had.items() if count]:
        until(f"a cut of the connections to {victim} on one of {holders}",
              lambda: any(cut.search(journal(n)) for n in holders), 30, interval=1)
    established = f"ss -H -t -n state established dst {address} dport = :{AMQP_PORT}"
    until(f"no AMQP connection left to {victim}",
          lambda: all(not run_on(n, established).strip() for n in had), 20, interval=1)
