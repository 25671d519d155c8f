"""The rendered OpenStack configs, checked with the real tools of the lab image.

- Every oslo.config file passes `oslo-config-validator --fatal-warnings` against the option
  namespaces of the service that reads it (upstream's config-generator lists): an unknown option,
  an unknown section or a deprecated name fails. See openstack_checks.py for the two gaps of the
  plain validator that the check closes (keystoneauth options, [keystone_authtoken]).
- Debian's init scripts, given the rendered /etc/default files, start each uWSGI API with our ini
  only (no wildcard `--http-socket`), and nova-compute reads nova-compute.conf after nova.conf.
- The Neutron agents' `host`, resolved by oslo.config from exactly the files their init scripts
  pass: the shared identity for every agent on a network node, the real hostname on a compute.

Not checkable here: the uWSGI ini files (uWSGI has no offline check; the show-args test proves
they are the only source of the socket), and the telemetry configs (the lab image has no
ceilometer/gnocchi/aodh packages).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conftest import FixedSecrets, load_example
from hastack.components import neutron
from hastack.components.base import Ctx
from hastack.components.registry import desired
from hastack.topology.model import Topology
from scratchnet import scratch_netns

pytestmark = pytest.mark.image
image = pytest.importorskip("hastack.lab.image")

GUEST = "/hastack-check"
HERE = Path(__file__).resolve().parent

_OSLO = ["oslo.log", "oslo.messaging", "oslo.policy", "oslo.middleware", "oslo.concurrency", "osprofiler"]
_NEUTRON = ["neutron", "neutron.agent", "neutron.db", "neutron.experimental", "neutron.extensions",
            "nova.auth", "ironic.auth", "placement.auth", "oslo.log", "oslo.cache", "oslo.db", "oslo.policy",
            "oslo.privsep", "oslo.concurrency", "oslo.messaging", "oslo.middleware.cors",
            "oslo.middleware.healthcheck",
            "oslo.middleware.http_proxy_to_wsgi", "oslo.reports", "oslo.service.periodic_task",
            "oslo.service.service", "oslo.service.sslutils", "oslo.service.wsgi", "oslo.versionedobjects",
            "keystonemiddleware.auth_token", "osprofiler"]
_NOVA = ["nova.conf", "oslo.privsep", "oslo.service.periodic_task", "oslo.service.service",
         "keystonemiddleware.auth_token", *_OSLO]
# Upstream's config-generator namespace lists (Zed), per file.
NAMESPACES: dict[str, list[str]] = {
    "keystone.conf": ["keystone", "oslo.cache", "oslo.db", *_OSLO],
    "glance-api.conf": ["castellan.config", "glance.api", "glance.store", "glance.multi_store", "oslo.db",
                        "keystonemiddleware.auth_token", "oslo.middleware.cors",
                        "oslo.middleware.healthcheck", "oslo.middleware.http_proxy_to_wsgi", "oslo.reports",
                        *_OSLO],
    "placement.conf": ["placement.conf", "keystonemiddleware.auth_token", "oslo.log", "oslo.middleware.cors",
                       "oslo.policy"],
    "nova.conf": _NOVA,
    "nova-compute.conf": _NOVA,
    "neutron.conf": _NEUTRON,
    "ml2_conf.ini": ["neutron.ml2", "oslo.log"],
    "linuxbridge_agent.ini": ["neutron.ml2.linuxbridge.agent", "oslo.log"],
    "openvswitch_agent.ini": ["neutron.ml2.ovs.agent", "oslo.log"],
    "l3_agent.ini": ["neutron.base.agent", "neutron.l3.agent", "oslo.log"],
    "dhcp_agent.ini": ["neutron.base.agent", "neutron.az.agent", "neutron.dhcp.agent", "oslo.log"],
    "metadata_agent.ini": ["neutron.metadata.agent", "oslo.log"],
    "cinder.conf": ["castellan.config", "cinder", "keystonemiddleware.auth_token", "oslo.config", "oslo.db",
                    "oslo.privsep", "oslo.reports", "oslo.service.periodic_task", "oslo.service.service",
                    "oslo.service.sslutils", "oslo.service.wsgi", "oslo.versionedobjects", *_OSLO],
    "heat.conf": ["heat.common.config", "heat.common.context", "heat.common.crypt",
                  "heat.engine.clients.os.keystone.heat_keystoneclient", "heat.common.wsgi",
                  "heat.engine.clients", "heat.engine.notification", "heat.engine.resources",
                  "heat.api.aws.ec2token",
                  "keystonemiddleware.auth_token", "oslo.cache", "oslo.reports", "oslo.service.service",
                  "oslo.service.periodic_task", "oslo.service.sslutils", "oslo.versionedobjects", *_OSLO],
}

UWSGI_INITS = {
    "keystone": "/etc/keystone/keystone-uwsgi.ini",
    "placement-api": "/etc/placement/placement-api-uwsgi.ini",
    "nova-api": "/etc/nova/nova-api-uwsgi.ini",
    "nova-api-metadata": "/etc/nova/nova-api-metadata-uwsgi.ini",
    "neutron-api": "/etc/neutron/neutron-api-uwsgi.ini",
    "cinder-api": "/etc/cinder/cinder-api-uwsgi.ini",
    "heat-api": "/etc/heat/heat-api-uwsgi.ini",
    "heat-api-cfn": "/etc/heat/heat-api-cfn-uwsgi.ini",
}
SHARED = ["neutron-l3-agent", "neutron-dhcp-agent", "neutron-metadata-agent", "neutron-linuxbridge-agent"]

# Trees of rendered nodes: "seed" as is, "ovs" the seed with l2_agent: openvswitch.
TREES = {"seed": ["ctl-1", "net-1", "cmp-1"], "ovs": ["net-1", "cmp-1"]}


def topology(tree: str) -> Topology:
    seed = load_example("seed.yml")
    if tree == "ovs":
        ovs = seed.openstack.model_copy(update={"l2_agent": "openvswitch"})
        return seed.model_copy(update={"openstack": ovs})
    return seed


def jobs_for(tree: str, node: str, paths: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in paths:
        name = p.rsplit("/", 1)[1]
        if name in NAMESPACES:
            out.append({"id": f"{tree}/{node}:{p}", "kind": "oslo", "file": p,
                        "namespaces": NAMESPACES[name]})
    inits = [i for i, ini in UWSGI_INITS.items() if ini in paths]
    out += [{"id": f"{tree}/{node}:show-args:{i}", "kind": "show-args", "init": i} for i in inits]
    if "/etc/nova/nova-compute.conf" in paths:
        out.append({"id": f"{tree}/{node}:show-args:nova-compute", "kind": "show-args",
                    "init": "nova-compute"})
    if neutron.CLEANUP in paths and tree == "seed":
        stop = next(ln for ln in neutron.cleanup_unit().splitlines() if ln.startswith("ExecStop="))
        out += [{"id": f"{tree}/{node}:cmd:verify-cleanup", "kind": "cmd",
                 "argv": ["systemd-analyze", "verify", neutron.CLEANUP]},
                {"id": f"{tree}/{node}:cmd:run-cleanup", "kind": "cmd", "argv": stop.split("=", 1)[1].split()}]
    # The image has the linuxbridge agent's package only: the Open vSwitch tree is validated, not run.
    if tree == "seed":
        agents = SHARED if node.startswith("net") else SHARED[3:] if node.startswith("cmp") else []
        out += [{"id": f"{tree}/{node}:host:{a}", "kind": "host", "init": a} for a in agents]
    return out


def run_node(tree: str, node: str, base: Path) -> dict[str, dict[str, Any]]:
    """Write the node's files, copy them over the image's /etc, run every job; results by id."""
    root = base / tree / node
    paths = []
    for f in desired(Ctx(topology(tree), FixedSecrets(None)))[node].files:
        target = root / f.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.data)
        target.chmod(f.mode)
        paths.append(f.path)
    jobs = jobs_for(tree, node, paths)
    (root / "jobs.json").write_text(json.dumps(jobs))
    guest = f"{GUEST}/{tree}/{node}"
    script = f"cp -a {guest}/etc/. /etc/ && exec python3 {GUEST}/openstack_checks.py {guest}/jobs.json"
    done = image.run_in_image(["sh", "-c", script], binds={str(base): GUEST}, timeout=600)
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(jobs), done.stderr[-3000:]
    return {r["id"]: r for r in results}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    if os.geteuid() != 0:
        pytest.skip("the lab image needs root")
    image.ensure_image()
    base = tmp_path_factory.mktemp("openstack-check")
    shutil.copy(HERE / "openstack_checks.py", base / "openstack_checks.py")
    out: dict[str, dict[str, Any]] = {}
    # Two nodes at a time: each container runs its checks one after another, and CI has two cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for got in pool.map(lambda tn: run_node(*tn, base), [(t, n) for t, nodes in TREES.items() for n in nodes]):
            out.update(got)
    return out


def ids(results: dict[str, dict[str, Any]], kind: str) -> list[str]:
    return [i for i in results if f":{kind}:" in i or (kind == "oslo" and ":/" in i)]


def test_every_oslo_file_is_valid(results: dict[str, dict[str, Any]]) -> None:
    checked = ids(results, "oslo")
    assert len(checked) >= 20
    bad = {i: results[i]["output"] for i in checked if results[i]["rc"] != 0}
    assert not bad, json.dumps(bad, indent=1)


def test_validator_catches_an_unknown_option(tmp_path: Path) -> None:
    """The check itself works: a misspelt option and an unknown section both fail."""
    if os.geteuid() != 0:
        pytest.skip("the lab image needs root")
    conf = tmp_path / "nova.conf"
    conf.write_text("[DEFAULT]\nmy_ip = 10.0.0.1\n[placement]\nauth_type = password\nusername = x\n"
                    "[keystone_authtoken]\nmemcached_server = a\n[not_a_section]\nx = 1\n"
                    "[vnc]\nenabeld = false\n")
    shutil.copy(HERE / "openstack_checks.py", tmp_path / "openstack_checks.py")
    job = {"id": "neg", "kind": "oslo", "file": f"{GUEST}/nova.conf", "namespaces": NAMESPACES["nova.conf"]}
    (tmp_path / "jobs.json").write_text(json.dumps([job]))
    done = image.run_in_image(["python3", f"{GUEST}/openstack_checks.py", f"{GUEST}/jobs.json"],
                              binds={str(tmp_path): GUEST}, timeout=300)
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["rc"] != 0
    out = result["output"]
    assert "vnc/enabeld" in out and "not_a_section/x" in out and "keystone_authtoken/memcached_server" in out
    assert "placement/username" not in out, "password plugin options are valid where auth_type is set"


@pytest.mark.parametrize("init", sorted(UWSGI_INITS))
def test_uwsgi_apis_take_their_socket_from_our_ini_only(results: dict[str, dict[str, Any]],
                                                        init: str) -> None:
    r = results[f"seed/ctl-1:show-args:{init}"]
    assert r["rc"] == 0, r["output"]
    assert "--http-socket" not in r["output"]
    assert f"--ini {UWSGI_INITS[init]}" in r["output"]


def test_nova_compute_reads_its_own_file_last(results: dict[str, dict[str, Any]]) -> None:
    args = results["seed/cmp-1:show-args:nova-compute"]["output"].split()
    files = [a.split("=", 1)[1] for a in args if a.startswith("--config-file=")]
    assert files == ["/etc/nova/nova.conf", "/etc/nova/nova-compute.conf"]


@pytest.mark.parametrize("agent", SHARED)
def test_network_node_agents_present_the_shared_identity(results: dict[str, dict[str, Any]],
                                                         agent: str) -> None:
    r = results[f"seed/net-1:host:{agent}"]
    assert r["rc"] == 0, r["output"]
    assert json.loads(r["output"])["host"] == load_example("seed.yml").openstack.agent_host


def test_compute_l2_agent_keeps_the_real_hostname(results: dict[str, dict[str, Any]]) -> None:
    r = results["seed/cmp-1:host:neutron-linuxbridge-agent"]
    assert r["rc"] == 0, r["output"]
    assert json.loads(r["output"])["host"] == "hastack-check"  # run_in_image's hostname


@pytest.mark.parametrize("job", ["verify-cleanup", "run-cleanup"])
def test_namespace_cleanup_unit(results: dict[str, dict[str, Any]], job: str) -> None:
    """systemd accepts the unit, and its stop command runs (a no-op with no namespaces)."""
    r = results[f"seed/net-1:cmd:{job}"]
    assert r["rc"] == 0, r["output"]


def test_openvswitch_agent_file_was_validated(results: dict[str, dict[str, Any]]) -> None:
    assert results["ovs/net-1:/etc/neutron/plugins/ml2/openvswitch_agent.ini"]["rc"] == 0


# -- keystone, live ----------------------------------------------------------------------------
KEYSTONE_LIVE = """
cp -a {guest}/etc/. /etc/
chown -R keystone:keystone /etc/keystone/fernet-keys /etc/keystone/credential-keys
chgrp keystone /etc/keystone/keystone.conf
/etc/init.d/keystone systemd-start >/dev/null 2>&1 &
code() {{ curl -s -m 2 -o /dev/null -w '%{{http_code}}' http://{addr}:5000$1; }}
for i in $(seq 1 120); do [ "$(code /v3)" = 200 ] && break; sleep 0.5; done
echo "v3=$(code /v3) healthcheck=$(code /healthcheck)"
echo "listen=$(ss -ltnH | awk '{{print $4}}' | grep ':5000$' | tr '\\n' ' ')"
kill -9 $! 2>/dev/null
"""


@pytest.fixture
def netns_ctl1() -> Iterator[str]:
    """A scratch network namespace holding ctl-1's address (and nothing else of the lab)."""
    with scratch_netns("10.77.0.11/24", prefix="hastack-os") as name:
        yield name


def test_keystone_starts_from_the_rendered_files(tmp_path: Path, netns_ctl1: str) -> None:
    """Debian's unit command line + our ini: keystone listens on ctl-1's own address only and
    answers the page HAProxy checks, with no database reachable (neither page needs it)."""
    if os.geteuid() != 0:
        pytest.skip("the lab image needs root")
    for f in desired(Ctx(topology("seed"), FixedSecrets(None)))["ctl-1"].files:
        target = tmp_path / "ctl-1" / f.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.data)
        target.chmod(f.mode)
    script = KEYSTONE_LIVE.format(guest=f"{GUEST}/ctl-1", addr="10.77.0.11")
    done = image.run_in_image(["sh", "-c", script], binds={str(tmp_path): GUEST}, netns=netns_ctl1, timeout=300)
    assert "v3=200 healthcheck=200" in done.stdout, done.stdout + done.stderr[-2000:]
    assert "listen=10.77.0.11:5000 \n" in done.stdout + "\n"


# -- the namespace cleanup, live ------------------------------------------------------------------
ROUTER_NS = "qrouter-8e1f2c44-1111-4222-8333-944445555666"
DHCP_NS = "qdhcp-8e1f2c44-1111-4222-8333-944445555777"
CLEANUP_LIVE = f"""
cp -a {{guest}}/etc/. /etc/
ip netns add {ROUTER_NS} && ip netns add {DHCP_NS}
ip link add tap-hastack type veth peer name qr-hastack netns {ROUTER_NS}
ip -n {ROUTER_NS} addr add 192.0.2.1/24 dev qr-hastack
$(sed -n 's/^ExecStop=//p' {neutron.CLEANUP}) >/dev/null 2>&1; echo "rc=$?"
echo "left=$(ip netns list | tr '\\n' ' ')"
ip link show tap-hastack >/dev/null 2>&1 && echo "tap=present" || echo "tap=gone"
"""


def test_cleanup_unit_removes_router_and_dhcp_namespaces(tmp_path: Path) -> None:
    """What the group's stop leaves on the node it leaves: nothing of the routers and networks."""
    if os.geteuid() != 0:
        pytest.skip("the lab image needs root")
    if "net-tools" not in image.PACKAGES:
        pytest.skip("the lab image lacks net-tools: neutron-netns-cleanup needs netstat (add it to PACKAGES)")
    for f in desired(Ctx(topology("seed"), FixedSecrets(None)))["net-1"].files:
        target = tmp_path / "net-1" / f.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.data)
    script = CLEANUP_LIVE.format(guest=f"{GUEST}/net-1")
    done = image.run_in_image(["sh", "-c", script], binds={str(tmp_path): GUEST}, timeout=300)
    assert "rc=0" in done.stdout and "tap=gone" in done.stdout, done.stdout + done.stderr[-2000:]
    assert ROUTER_NS not in done.stdout.split("left=")[1] and DHCP_NS not in done.stdout.split("left=")[1]
