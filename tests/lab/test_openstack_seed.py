"""Lab tier: the OpenStack control plane of examples/seed.yml, seen the way a client sees it.

Everything is asked from the compute node (cmp-1) with the real `openstack` client, which knows
only the VIP (a clouds.yaml written there from the secrets file, mode 0600). One lab for the whole
module, as in test_deploy_seed.py: `lab up` resumes a running lab and deploy is idempotent, so a
developer's lab is reused; HASTACK_KEEP_LAB=1 keeps it afterwards.
"""

from __future__ import annotations

import re
import shlex
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hastack import pki
from hastack.components import haproxy, keystone
from hastack.secrets import Secrets, secrets_path
from hastack.topology.load import load
from seedcloud import (
    AGENT_HOST,
    CLOUDS,
    CONTROLLERS,
    TOPOLOGY,
    VIP,
    agents_node,
    hastack,
    install_clouds_yaml,
    namespaces,
    on,
    osc,
    osc_quietly,
    until,
)

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def cloud(seed_lab: Path) -> Iterator[str]:
    """The session's seed lab (tests/conftest.py), and cmp-1 holding a clouds.yaml that names only
    the VIP."""
    yield install_clouds_yaml()


def test_clouds_yaml_is_private(cloud: str) -> None:
    assert on(cloud, f"stat -c '%a %U' {CLOUDS}").split() == ["600", "root"]


def test_token_issue_through_the_vip(cloud: str) -> None:
    token = osc(cloud, "token", "issue")
    assert token["id"] and token["project_id"] and token["user_id"]


def test_catalog_names_only_the_vip(cloud: str) -> None:
    endpoints = osc(cloud, "endpoint", "list")
    types = {e["Service Type"] for e in endpoints}
    assert {"identity", "image", "placement", "compute", "network", "volumev3", "orchestration",
            "cloudformation"} <= types
    for e in endpoints:
        assert e["URL"].startswith(f"https://{VIP}:"), e
        assert e["Region"] == "RegionOne"
    # exactly one endpoint per service and interface
    keys = [(e["Service Name"], e["Interface"]) for e in endpoints]
    assert len(keys) == len(set(keys))


def hrefs(doc: Any) -> list[str]:
    if isinstance(doc, dict):
        return [v for k, v in doc.items() if k == "href" and isinstance(v, str)] + \
            [h for v in doc.values() for h in hrefs(v)]
    return [h for v in doc for h in hrefs(v)] if isinstance(doc, list) else []


def test_the_vip_serves_tls_from_the_clusters_ca_and_the_services_link_https(cloud: str) -> None:
    """From the operator's machine, verified with the CA in the secrets file (nothing else trusts
    it): every API's version document links only https (HAProxy's X-Forwarded-Proto, read by each
    service's proxy middleware, or keystoneauth's discovery would leave TLS); each controller's stats
    page is TLS too. On a node the system store trusts the CA (curl without options), and plain HTTP
    on an API port gets no API answer."""
    topo = load(TOPOLOGY).topology
    assert topo is not None
    secrets = Secrets.load(secrets_path(TOPOLOGY, topo.name))
    ca = pki.ca_cert(secrets)
    assert ca is not None
    verify = ssl.create_default_context(cadata=ca)
    with httpx.Client(verify=verify, trust_env=False, timeout=10) as client:
        for api in haproxy.apis(topo):
            r = client.get(f"https://{VIP}:{api.port}/")
            assert r.status_code < 500, (api.name, r.status_code)
            if "json" in r.headers.get("content-type", ""):
                links = hrefs(r.json())
                assert not [h for h in links if h.startswith("http:")], (api.name, links)
                assert not [h for h in links if VIP in h and not h.startswith(f"https://{VIP}:")], (api.name, links)
        stats = client.get(f"https://{CONTROLLERS['ctl-2']}:8404/stats",
                           auth=(haproxy.STATS_USER, secrets.password(haproxy.STATS_SECRET)))
        assert stats.status_code == 200
    with httpx.Client(trust_env=False, timeout=10) as untrusting, pytest.raises(httpx.ConnectError):
        untrusting.get(f"https://{VIP}:5000/v3")
    each = f"curl -s -o /dev/null -w '%{{http_code}} ' $s://{VIP}:5000/v3"
    codes = on(cloud, f"for s in https http; do {each}; done; true")
    assert codes.split()[0] == "200" and codes.split()[1] != "200", codes


def test_the_admin_openrc_on_a_controller_works_over_tls(cloud: str) -> None:
    out = on("ctl-1", "stat -c '%a' /root/admin-openrc && . /root/admin-openrc && "
                      "openstack token issue -f value -c expires >/dev/null && echo TOKEN && "
                      'echo "$OS_AUTH_URL"')
    assert out.split() == ["600", "TOKEN", f"https://{VIP}:5000/v3"], out


def test_a_token_from_one_controller_validates_on_every_other(cloud: str) -> None:
    """Fernet keys are the same everywhere: a token issued by ctl-1's Keystone, asked directly on its
    own address, validates on ctl-2's and ctl-3's own addresses. The token goes through a 0600 header
    file (printf is a shell builtin), never through an argv."""
    issuer = CONTROLLERS["ctl-1"]
    codes = {}
    for name, addr in CONTROLLERS.items():
        if addr == issuer:
            continue
        script = (
            "set -e; umask 077; hdr=$(mktemp); trap 'rm -f $hdr' EXIT; "
            f"t=$(openstack --os-cloud hastack --os-auth-url http://{issuer}:5000/v3 token issue -f value -c id); "
            "printf 'X-Auth-Token: %s\\nX-Subject-Token: %s\\n' \"$t\" \"$t\" > $hdr; "
            f"curl -s -o /dev/null -w '%{{http_code}}' -H @$hdr http://{addr}:5000/v3/auth/tokens"
        )
        codes[name] = on(cloud, script).strip()
    assert codes == {"ctl-2": "200", "ctl-3": "200"}


def services(rows: list[dict[str, Any]], state_key: str, up: str) -> set[tuple[str, str]]:
    return {(r["Binary"], r["Host"]) for r in rows if r[state_key] == up}


def test_compute_services_up(cloud: str) -> None:
    rows = osc(cloud, "compute", "service", "list")
    up = services(rows, "State", "up")
    for ctl in CONTROLLERS:
        assert {("nova-scheduler", ctl), ("nova-conductor", ctl)} <= up
    assert ("nova-compute", "cmp-1") in up
    assert all(r["Status"] == "enabled" for r in rows)


def test_compute_host_is_mapped_to_a_cell(cloud: str) -> None:
    hypervisors = osc(cloud, "hypervisor", "list")
    assert [h["Hypervisor Hostname"] for h in hypervisors] == ["cmp-1"]


def test_volume_and_orchestration_services_up(cloud: str) -> None:
    volume = services(osc(cloud, "volume", "service", "list"), "State", "up")
    assert {("cinder-scheduler", c) for c in CONTROLLERS} <= volume
    heat = osc(cloud, "orchestration", "service", "list")
    engines = {r["Host"] for r in heat if r["Binary"] == "heat-engine" and r["Status"] == "up"}
    assert engines == set(CONTROLLERS)


def test_network_agents_alive_and_clustered_ones_once_under_the_shared_identity(cloud: str) -> None:
    agents = osc(cloud, "network", "agent", "list")
    alive = [(a["Binary"], a["Host"]) for a in agents if a["Alive"] in (True, ":-)")]
    assert ("neutron-linuxbridge-agent", AGENT_HOST) in alive
    assert ("neutron-linuxbridge-agent", "cmp-1") in alive
    for binary in ("neutron-l3-agent", "neutron-dhcp-agent", "neutron-metadata-agent"):
        rows = [a for a in agents if a["Binary"] == binary]
        assert [a["Host"] for a in rows] == [AGENT_HOST], rows
        assert (binary, AGENT_HOST) in alive
    # nothing registered under a network node's own name: the identity is shared
    assert not [a for a in agents if a["Host"] in ("net-1", "net-2")]


DECRYPT = """
import base64, glob, sys
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
keys = MultiFernet([Fernet(open(p).read().strip()) for p in sorted(glob.glob("/etc/keystone/fernet-keys/*"))])
bad = 0
for t in sys.stdin.read().split():
    try:
        keys.decrypt((t + "=" * (-len(t) % 4)).encode())
    except InvalidToken:
        bad += 1
print(bad)
"""
"""Run on a controller: how many of the tokens on stdin its key directory cannot decrypt (Keystone's
own check under its cache: a validation the cache answers never touches the keys)."""


def issue_token(addr: str, password: str) -> str:
    body = keystone.password_auth("admin", password, "admin")
    r = httpx.post(f"http://{addr}:5000/v3/auth/tokens", json=body, timeout=20)
    assert r.status_code == 201, (addr, r.status_code)
    return r.headers["X-Subject-Token"]


def validate_token(addr: str, token: str) -> int:
    return httpx.get(f"http://{addr}:5000/v3/auth/tokens", timeout=20,
                     headers={"X-Auth-Token": token, "X-Subject-Token": token}).status_code


def test_fernet_rotation_refuses_no_valid_token(cloud: str) -> None:
    """`hastack rotate-keys` while every controller issues tokens and every controller validates each
    (asked on their own addresses, not the VIP): no token refused before, during or after; at the end
    every controller's key directory decrypts every token issued (the API check alone could be
    answered from the token cache). A second rotation at once is refused: it would drop the key that
    signed the first tokens. Then the redeploy below must still change nothing."""
    import threading

    stored = Secrets.load(secrets_path(TOPOLOGY, "seed"))
    password = stored.password(keystone.ADMIN_SECRET)
    # A developer's kept lab may have rotated already (within 49 h the rotation is refused): force it
    # then; the key it drops signed none of this test's tokens. A fresh lab (CI) takes the plain path.
    force = ["--force"] if stored.get(keystone.FERNET_ROTATED) else []
    tokens: list[str] = []
    refused: list[tuple[str, str, int]] = []
    rounds = 0
    stop = threading.Event()

    errors: list[str] = []

    def churn() -> None:
        nonlocal rounds
        try:
            while not stop.is_set():
                for issuer, addr in CONTROLLERS.items():
                    t = issue_token(addr, password)
                    tokens.append(t)
                    for name, other in CONTROLLERS.items():
                        if (code := validate_token(other, t)) != 200:
                            refused.append((issuer, name, code))
                rounds += 1
        except Exception as exc:  # reported by the test, not lost in a thread
            errors.append(repr(exc))

    worker = threading.Thread(target=churn, daemon=True)
    worker.start()
    try:
        until("two rounds of issue and validate before the rotation", lambda: rounds >= 2 or errors or None, 120, 0.2)
        first = len(tokens)
        res = hastack("rotate-keys", str(TOPOLOGY), "--yes", *force, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "every node holds the new keys" in res.stdout, res.stdout
        after = rounds
        until("two rounds after the rotation", lambda: rounds >= after + 2 or errors or None, 120, 0.2)
    finally:
        stop.set()
        worker.join(60)
    print(f"{len(tokens)} tokens issued over {rounds} rounds ({first} before the rotation), each validated on "
          f"every controller; {res.stdout.strip().splitlines()[-1]}")
    assert errors == [] and refused == [] and len(tokens) > first
    for name in CONTROLLERS:
        undecryptable = on(name, f"python3 -c {shlex.quote(DECRYPT)}", stdin=" ".join(tokens))
        assert undecryptable.strip() == "0", (name, undecryptable)
    again = hastack("rotate-keys", str(TOPOLOGY), "--yes", timeout=300)
    assert again.returncode == 1 and "not rotated" in again.stdout, again.stdout + again.stderr
    assert all(validate_token(addr, tokens[0]) == 200 for addr in CONTROLLERS.values())


def read_credential(addr: str, token: str, cred: str) -> str:
    """The credential's blob as that controller's Keystone decrypts it (asked on its own address)."""
    r = httpx.get(f"http://{addr}:5000/v3/credentials/{cred}", timeout=20, headers={"X-Auth-Token": token})
    assert r.status_code == 200, (addr, r.status_code, r.text[:300])
    return str(r.json()["credential"]["blob"])


def test_credential_key_rotation_leaves_every_credential_readable(cloud: str) -> None:
    """Issue 16: a stored credential (encrypted with the primary credential key), two rotations in a row
    (the second drops the key that encrypted it first: only the migrate after the first makes that
    safe), and every controller decrypts it after each. Then the redeploy below must change nothing."""
    password = Secrets.load(secrets_path(TOPOLOGY, "seed")).password(keystone.ADMIN_SECRET)
    addr = next(iter(CONTROLLERS.values()))
    token = issue_token(addr, password)
    user = httpx.get(f"http://{addr}:5000/v3/auth/tokens", timeout=20,
                     headers={"X-Auth-Token": token, "X-Subject-Token": token}).json()["token"]["user"]["id"]
    blob = '{"access": "hastack-test", "secret": "s3cr3t"}'
    r = httpx.post(f"http://{addr}:5000/v3/credentials", timeout=20, headers={"X-Auth-Token": token},
                   json={"credential": {"type": "totp", "user_id": user, "blob": blob}})
    assert r.status_code == 201, r.text[:300]
    cred = r.json()["credential"]["id"]
    try:
        for round_ in (1, 2):
            dry = hastack("rotate-keys", str(TOPOLOGY), "--credentials", "--dry-run", timeout=300)
            assert dry.returncode == 0 and "credential keys" in dry.stdout, dry.stdout + dry.stderr
            res = hastack("rotate-keys", str(TOPOLOGY), "--credentials", "--yes", timeout=600)
            assert res.returncode == 0, res.stdout + res.stderr
            assert "every credential re-encrypted" in res.stdout, res.stdout
            for name, other in CONTROLLERS.items():
                assert read_credential(other, issue_token(other, password), cred) == blob, (round_, name)
    finally:
        httpx.delete(f"http://{addr}:5000/v3/credentials/{cred}", timeout=20, headers={"X-Auth-Token": token})


def test_redeploy_changes_nothing(cloud: str) -> None:
    res = hastack("deploy", str(TOPOLOGY), "--yes")
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"deploy done in [0-9.]+s: 0 changed", res.stdout), res.stdout


def test_network_router_and_server_on_the_shared_agents(cloud: str) -> None:
    """A tenant network, a router and a server (fake driver): the DHCP and router ports bind to the
    shared agent identity and go ACTIVE, their namespaces exist only on the node that runs the
    Pacemaker group, and the server's port binds to the compute. Everything is removed afterwards."""
    name = "hs-lab"
    on(cloud, "head -c 1024 /dev/zero > /root/hs-lab.img")
    try:
        net = osc(cloud, "network", "create", f"{name}-net")
        osc(cloud, "subnet", "create", "--network", net["id"], "--subnet-range", "192.168.77.0/24", f"{name}-sub")
        router = osc(cloud, "router", "create", f"{name}-router")
        on(cloud, shlex.join(["openstack", "--os-cloud", "hastack", "router", "add", "subnet", router["id"],
                              f"{name}-sub"]))
        osc(cloud, "flavor", "create", "--ram", "64", "--disk", "0", "--vcpus", "1", f"{name}-flavor")
        osc(cloud, "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file",
            "/root/hs-lab.img", f"{name}-image")
        server = osc(cloud, "server", "create", "--flavor", f"{name}-flavor", "--image", f"{name}-image",
                     "--network", net["id"], "--wait", f"{name}-vm")
        assert server["status"] == "ACTIVE"
        ports = osc(cloud, "port", "list", "--network", net["id"], "--long")
        by_owner = {p["Device Owner"]: p for p in ports}
        assert {"network:dhcp", "network:router_interface", "compute:nova"} <= set(by_owner), ports
        for owner in ("network:dhcp", "network:router_interface"):
            port = osc(cloud, "port", "show", by_owner[owner]["ID"])
            assert port["binding_host_id"] == AGENT_HOST, port
            assert port["binding_vif_type"] not in ("binding_failed", "unbound"), port
            assert port["status"] == "ACTIVE", port
        vm_port = osc(cloud, "port", "show", by_owner["compute:nova"]["ID"])
        assert vm_port["binding_host_id"] == "cmp-1" and vm_port["binding_vif_type"] == "bridge", vm_port
        active = agents_node()
        passive = ({"net-1", "net-2"} - {active}).pop()
        want = {f"qrouter-{router['id']}", f"qdhcp-{net['id']}"}
        assert want <= namespaces(active)
        assert not want & namespaces(passive)
    finally:
        # best effort, in dependency order; a missing object is fine
        for argv in (["server", "delete", "--wait", f"{name}-vm"], ["router", "remove", "subnet", f"{name}-router",
                                                                       f"{name}-sub"],
                     ["router", "delete", f"{name}-router"], ["network", "delete", f"{name}-net"],
                     ["flavor", "delete", f"{name}-flavor"], ["image", "delete", f"{name}-image"]):
            osc_quietly(cloud, *argv)
        on(cloud, "rm -f /root/hs-lab.img")


def test_a_hung_api_is_restarted_by_the_watchdog(cloud: str) -> None:
    """placement-api on ctl-3 stopped with SIGSTOP: it still accepts connections into its listen
    queue but never answers, the way the eventlet deadlock left APIs in CI. hastack-api-watchdog
    restarts it after its silence count (past the unit's start grace); it answers again and the
    journal says why, with what the processes were waiting on."""
    node, unit, url = "ctl-3", "placement-api", f"http://{CONTROLLERS['ctl-3']}:8778/"
    since = on(node, "date '+%Y-%m-%d %H:%M:%S'").strip()
    before = on(node, f"systemctl show -p MainPID --value {unit}").strip()
    on(node, f"systemctl kill -s STOP {unit}")
    try:
        assert on(node, f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 3 {url}", check=False) == "000"
        until(f"the watchdog restarting {unit} on {node}",
              lambda: on(node, f"systemctl show -p MainPID --value {unit}").strip() not in (before, "0"), 420, 5)
        until(f"{unit} on {node} answering again",
              lambda: on(node, f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 3 {url}", check=False) == "200",
              180, 2)
        log = on(node, f"journalctl -u hastack-api-watchdog --since '{since}' --no-pager -o cat")
        assert f"{unit}: no HTTP answer from {url}" in log and "restarting it" in log, log
        assert re.search(rf"{unit}:   pid \d+: state T", log), log  # the evidence: stopped processes
    finally:
        on(node, f"systemctl kill -s CONT {unit}", check=False)


def dhcp_alive(cloud: str) -> bool:
    rows = osc(cloud, "network", "agent", "list", "--agent-type", "dhcp")
    return [r["Alive"] for r in rows if r["Host"] == AGENT_HOST] in ([True], [":-)"])


def test_an_agent_neutron_no_longer_hears_from_is_recovered_through_pacemaker(cloud: str) -> None:
    """The server's view: the DHCP agent's heartbeat, as Neutron recorded it in its database, is held
    300 s in the past (rewritten on a controller every few seconds, as if its reports no longer
    arrived) while the L3 and metadata agents of the same identity keep reporting. The watchdog on
    the node running the group reads that through the VIP with its three-column account, kills the
    agent, and Pacemaker's monitor starts it again in place."""
    node, unit = agents_node(), "neutron-dhcp-agent"
    since = on(node, "date '+%Y-%m-%d %H:%M:%S'").strip()
    backdate = (f"UPDATE neutron.agents SET heartbeat_timestamp = UTC_TIMESTAMP() - INTERVAL 300 SECOND "
                f"WHERE host = '{AGENT_HOST}' AND `binary` = '{unit}'")

    def pid() -> str:
        return on(node, f"systemctl show -p MainPID --value {unit}").strip()

    first = pid()

    def silenced_and_replaced() -> bool:
        on("ctl-1", "mariadb", stdin=backdate + ";\n")
        return pid() not in (first, "0")

    try:
        # up to the watchdog's start grace (180 s after the unit started) + a check and the monitor
        until(f"the watchdog recovering {unit} on {node}", silenced_and_replaced, 300, 3)
        until(f"{unit} alive in Neutron after its restart", lambda: dhcp_alive(cloud), 180, 3)
        log = on(node, f"journalctl -u hastack-api-watchdog --since '{since}' --no-pager -o cat")
        assert re.search(rf"{unit}: Neutron last heard from it \d+ s ago \(peers: .*neutron-l3-agent \d+ s", log), log
        assert log.count(f"{unit}: killed its main process") == 1, log
        assert on(node, "crm_resource --locate -r hastack-neutron-cleanup").split()[-1] == node
    finally:
        on(node, f"crm_resource --cleanup -r {unit}", check=False)


def test_a_frozen_or_given_up_neutron_agent_is_recovered_through_pacemaker(cloud: str) -> None:
    """The DHCP agent on the node running the group, two ways of running while doing nothing:
    its main process stopped (SIGSTOP), then (on its next run) its log saying it gave up its state
    reports for good. Each time hastack-api-watchdog on that node kills the stuck process,
    Pacemaker's monitor restarts the resource there as after a crash, and Neutron sees the agent
    alive again. CI's stop-23 run saw the DHCP agent stay dead in Neutron for 15 minutes after a
    controller power cycle with its unit active."""
    node, unit = agents_node(), "neutron-dhcp-agent"
    since = on(node, "date '+%Y-%m-%d %H:%M:%S'").strip()

    def pid() -> str:
        return on(node, f"systemctl show -p MainPID --value {unit}").strip()

    first = pid()
    assert first != "0" and dhcp_alive(cloud)
    try:
        on(node, f"systemctl kill --kill-who=main -s STOP {unit}")
        second = until(f"Pacemaker restarting the frozen {unit} on {node}",
                       lambda: (p := pid()) not in (first, "0") and p, 120, 2)
        until(f"{unit} alive in Neutron after its restart", lambda: dhcp_alive(cloud), 180, 3)
        # neutron's own words, written under the running agent's PID as oslo.log writes them
        now = on(node, "date '+%Y-%m-%d %H:%M:%S.000'").strip()
        line = (f"{now} {second} WARNING neutron.agent.dhcp.agent [-] Neutron server does not support state "
                "report. State report for this agent will be disabled.")
        on(node, f"cat >> /var/log/neutron/{unit}.log", stdin=line + "\n")
        until(f"Pacemaker restarting {unit} after it gave up its reports",
              lambda: pid() not in (first, second, "0"), 120, 2)
        until(f"{unit} alive in Neutron after the second restart", lambda: dhcp_alive(cloud), 180, 3)
        log = on(node, f"journalctl -u hastack-api-watchdog --since '{since}' --no-pager -o cat")
        assert f"{unit}: its main process stopped (state T)" in log, log
        assert f"{unit}: its running process logged" in log, log
        assert log.count(f"{unit}: killed its main process") == 2, log  # once per fault (Hold)
        # Pacemaker counted one failure per fault and restarted the agent in place (threshold 3)
        assert on(node, "crm_resource --locate -r hastack-neutron-cleanup").split()[-1] == node
        count = on(node, f"crm_failcount --query -r {unit} -N {node}")
        assert re.search(r"\bvalue=2\b", count), count
    finally:
        on(node, f"systemctl kill --kill-who=main -s CONT {unit}", check=False)
        on(node, f"crm_resource --cleanup -r {unit}", check=False)  # the two failures off its count
