"""The rendered cluster configs, checked by the real tools inside the lab image.

- corosync.conf: `corosync -t` parses it, checks totem/knet/crypto/quorum and finds the local node by
  its address ("No valid name found for local host" otherwise), so it runs in a scratch network
  namespace holding net-1's address. It logs to its log file, not stderr: the test prints that.
- the crmsh script, applied to an empty offline CIB (`CIB_file=... crm configure load update`), then
  `crm_verify`. crmsh checks every primitive against its agent's metadata, and for the `systemd:`
  class Pacemaker asks systemd over D-Bus: with no systemd running (this is a chroot, not a booted
  node) that lookup fails. So pass 1 applies, with crmsh's checks on, everything except the systemd
  primitives and the group (that checks the fence agent's parameters against fence_hastack's
  metadata); pass 2 applies the whole file with crmsh's metadata checks off
  (`-o core.check_frequency=never`), and crm_verify checks the resulting CIB.
- what Pacemaker's scheduler makes of the agents' constraints (`crm_simulate` on the offline CIB with
  two nodes injected): the cleanup first, then the three agents in parallel; a third failure of one
  agent moves them all, stopping the agents before the cleanup; nothing moves back. And the move
  from the group of before: one crmsh session deletes it and loads the file, ending where a fresh
  load does.
- the qdevice TLS exchange (`corosync.qdevice_tls_steps`), run step by step with each host's
  /etc/corosync and /var/tmp kept in its own directory between steps.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import FixedSecrets, load_example
from hastack.components import corosync, pacemaker
from hastack.components.base import Ctx
from hastack.components.registry import desired
from hastack.topology.model import Topology
from scratchnet import ip, scratch_netns

pytestmark = [pytest.mark.image, pytest.mark.usefixtures("lab_image")]
image = pytest.importorskip("hastack.lab.image")

GUEST = "/hastack-check"
SEED = load_example("seed.yml")
NET1 = f"{SEED.node('net-1').address}/{SEED.network.management.prefixlen}"
NO_META_CHECK = ["-o", "core.check_frequency=never"]


def write_node(topo: Topology, node: str, dest: Path) -> Path:
    """The node's rendered files under dest/<path>, as deploy would write them."""
    for f in desired(Ctx(topo, FixedSecrets(None)))[node].files:
        target = dest / f.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.data)
        target.chmod(f.mode)
    return dest


def sh(script: str, binds: dict[str, str], netns: str | None = None) -> subprocess.CompletedProcess[str]:
    done: subprocess.CompletedProcess[str] = image.run_in_image(["sh", "-c", script], binds=binds,
                                                                netns=netns, timeout=120)
    return done


@pytest.fixture
def netns_with(request: pytest.FixtureRequest) -> Iterator[str]:
    """A scratch network namespace holding the address given as the indirect parameter (on a veth)."""
    with scratch_netns(request.param) as name:
        yield name


# -- corosync ------------------------------------------------------------------------------------
COROSYNC_T = "corosync -t; rc=$?; cat /var/log/corosync/corosync.log 2>/dev/null; exit $rc"


def corosync_binds(root: Path) -> dict[str, str]:
    return {str(root / "etc/corosync/corosync.conf"): corosync.CONF,
            str(root / "etc/corosync/authkey"): corosync.AUTHKEY}


@pytest.mark.parametrize("netns_with", [NET1], indirect=True)
def test_corosync_accepts_seed_config(tmp_path: Path, netns_with: str) -> None:
    root = write_node(SEED, "net-1", tmp_path)
    done = sh(COROSYNC_T, corosync_binds(root), netns=netns_with)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("netns_with", [NET1], indirect=True)
def test_corosync_checker_rejects_a_bad_cipher(tmp_path: Path, netns_with: str) -> None:
    """The checker is real: the same file with an unknown cipher fails."""
    root = write_node(SEED, "net-1", tmp_path)
    conf = root / "etc/corosync/corosync.conf"
    conf.write_text(conf.read_text().replace("crypto_cipher: aes256", "crypto_cipher: rot13"))
    done = sh(COROSYNC_T, corosync_binds(root))
    assert done.returncode != 0
    done = sh(COROSYNC_T, corosync_binds(root), netns=netns_with)
    assert done.returncode != 0 and "cipher" in done.stdout + done.stderr


# -- pacemaker -------------------------------------------------------------------------------------
def without_systemd_resources(text: str) -> str:
    """The script minus the systemd primitives and what names them (for crmsh's checked pass)."""
    kept = [block for block in re.split(r"(?<!\\)\n", text)
            if not (block.startswith(("group ", "tag ", "colocation ", "order "))
                    or (block.startswith("primitive ") and " systemd:" in block))]
    return "\n".join(kept) + "\n"


APPLY = f"""
set -e
cd {GUEST}
cibadmin --empty > checked.xml
CIB_file=checked.xml crm configure load update fencing.crm
cibadmin --empty > cib.xml
CIB_file=cib.xml crm {" ".join(NO_META_CHECK)} configure load update pacemaker.crm
cp cib.xml first.xml
CIB_file=cib.xml crm {" ".join(NO_META_CHECK)} configure load update pacemaker.crm
cp cib.xml second.xml
crm_verify -V -x cib.xml
"""


def apply_script(text: str, work: Path) -> subprocess.CompletedProcess[str]:
    work.mkdir(parents=True, exist_ok=True)
    (work / "pacemaker.crm").write_text(text)
    (work / "fencing.crm").write_text(without_systemd_resources(text))
    return sh(APPLY, {str(work): GUEST})


def seed_script(tmp_path: Path) -> str:
    root = write_node(SEED, "net-1", tmp_path / "node")
    return (root / pacemaker.SCRIPT.lstrip("/")).read_text()


def test_seed_crm_script_loads_and_verifies_offline(tmp_path: Path) -> None:
    work = tmp_path / "work"
    done = apply_script(seed_script(tmp_path), work)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not re.search(r"\berror\b", done.stderr, re.I), done.stderr
    cib = (work / "cib.xml").read_text()
    for rid in pacemaker.owned_ids(SEED):
        assert f'id="{rid}"' in cib
    assert 'class="systemd" type="neutron-l3-agent"' in cib
    assert 'class="stonith" type="fence_hastack"' in cib
    assert 'name="stonith-enabled" value="true"' in cib


def test_reapplying_the_script_changes_nothing(tmp_path: Path) -> None:
    work = tmp_path / "work"
    done = apply_script(seed_script(tmp_path), work)
    assert done.returncode == 0, done.stdout + done.stderr
    # byte for byte, epoch included: the second load was not even a write
    assert (work / "first.xml").read_text() == (work / "second.xml").read_text()


def test_crm_checker_rejects_an_unknown_fence_parameter(tmp_path: Path) -> None:
    done = apply_script(seed_script(tmp_path).replace("plug=net-1", "plugg=net-1"), tmp_path / "work")
    assert done.returncode != 0 and "plugg" in done.stderr


def test_two_node_variant_verifies_with_priority_fencing(tmp_path: Path) -> None:
    topo = load_example("four-servers.yml")
    tuning = topo.tuning.model_copy(update={
        "corosync": topo.tuning.corosync.model_copy(update={"priority_fencing_delay_s": 5})})
    done = apply_script(pacemaker.script(topo.model_copy(update={"tuning": tuning})), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    cib = (tmp_path / "cib.xml").read_text()
    assert 'name="priority-fencing-delay" value="5s"' in cib and 'name="priority" value="10"' in cib


def loaded_cib(name: str) -> str:
    """Shell lines: in the bound directory, a fresh offline CIB `name` with pacemaker.crm loaded."""
    return f"""
set -e
cd {GUEST}
NM="{" ".join(NO_META_CHECK)}"
cibadmin --empty > {name}
CIB_file={name} crm $NM configure load update pacemaker.crm
"""


SIMULATE = loaded_cib("sim.xml") + """CIB_file=sim.xml crm_attribute -t crm_config -n stonith-enabled -v false
CIB_file=sim.xml cibadmin -C -o nodes -X '<node id="1" uname="net-1"/>'
CIB_file=sim.xml cibadmin -C -o nodes -X '<node id="2" uname="net-2"/>'
crm_simulate -x sim.xml -S -q true -u net-1 -u net-2 -G start.graph -O started.xml > start.out
cp started.xml failed.xml
CIB_file=failed.xml crm_attribute -N net-1 -l reboot -n 'fail-count-neutron-l3-agent#monitor_10000' -v 3
crm_simulate -x failed.xml -S -q true -G move.graph -O moved.xml > move.out
CIB_file=moved.xml crm_attribute -N net-1 -l reboot -n 'fail-count-neutron-l3-agent#monitor_10000' -D
crm_simulate -x moved.xml -S -q true -G back.graph > back.out
"""


def graph(path: Path) -> dict[tuple[str, str], set[str]]:
    """A transition graph: (action key, node) -> the keys of the start/stop actions it waits for."""
    import xml.etree.ElementTree as ET

    out: dict[tuple[str, str], set[str]] = {}
    for syn in ET.parse(path).getroot().iter("synapse"):
        op = next(iter(syn.find("action_set") or []))
        if op.get("operation") in ("start", "stop"):
            out[(str(op.get("operation_key")), str(op.get("on_node")))] = {
                str(t.get("operation_key")) for t in syn.iterfind("inputs/trigger/*")
                if str(t.get("operation")) in ("start", "stop")}
    return out


def test_scheduler_starts_the_agents_in_parallel_and_moves_them_together(tmp_path: Path) -> None:
    """Fencing off here only because crm_simulate has no fence device to run (the constraints are
    the deployed ones)."""
    tmp_path.joinpath("pacemaker.crm").write_text(seed_script(tmp_path))
    done = sh(SIMULATE, {str(tmp_path): GUEST})
    assert done.returncode == 0, done.stdout + done.stderr
    cleanup, *agents = ["hastack-neutron-cleanup", "neutron-metadata-agent", "neutron-dhcp-agent",
                        "neutron-l3-agent"]
    start = graph(tmp_path / "start.graph")
    (node,) = {n for (k, n) in start if k.split("_")[0] in (cleanup, *agents)}  # all four on one node
    assert start[(f"{cleanup}_start_0", node)] == set()
    for a in agents:  # each waits for the cleanup's start and for nothing else
        assert start[(f"{a}_start_0", node)] == {f"{cleanup}_start_0"}, start
    move = graph(tmp_path / "move.graph")
    other = "net-2" if node == "net-1" else "net-1"
    assert node == "net-1", "the failure count is planted on net-1"
    assert move[(f"{cleanup}_stop_0", node)] == {f"{a}_stop_0" for a in agents}
    assert move[(f"{cleanup}_start_0", other)] == {f"{cleanup}_stop_0"}
    for a in agents:
        assert f"{cleanup}_start_0" in move[(f"{a}_start_0", other)]
        assert (f"{a}_stop_0", node) in move
    back = graph(tmp_path / "back.graph")
    assert not [k for k in back if k[0].split("_")[0] in (cleanup, *agents)], "nothing moves back"


MIGRATE = loaded_cib("fresh.xml") + f"""cibadmin --empty > live.xml
CIB_file=live.xml crm $NM configure load update old.crm
CIB_file=live.xml crm_attribute -t crm_config -n stonith-enabled -v false
for f in fresh.xml live.xml; do
  CIB_file=$f cibadmin -C -o nodes -X '<node id="1" uname="net-1"/>'
  CIB_file=$f cibadmin -C -o nodes -X '<node id="2" uname="net-2"/>'
done
crm_simulate -x live.xml -S -q true -u net-1 -u net-2 -O running.xml > /dev/null
sed 's#{pacemaker.SCRIPT}#{GUEST}/pacemaker.crm#' commands > commands.here
sed 's#crm configure#crm {" ".join(NO_META_CHECK)} configure#' apply.sh > apply.here
CIB_file=running.xml sh apply.here < commands.here
crm_simulate -x running.xml -S -q true -G after.graph > after.out
CIB_file=running.xml crm configure show > migrated.txt
CIB_file=fresh.xml crm configure show > fresh.txt
"""


def test_migration_from_the_group_restarts_nothing(tmp_path: Path) -> None:
    """The group of before, its members running on a node, becomes the set as deploy applies it (a
    copy of the CIB, then one configuration replace): the result is a fresh load's configuration, and
    the scheduler plans no stop or start for it. What this cannot show offline: crmsh's `delete
    --force` on a live CIB commits target-role=Stopped and waits for the DC to stop the group (it
    restarted every agent on the seed lab, 2026-12-06); the lab test redeploys over the group."""
    new = seed_script(tmp_path)
    ids = ["hastack-neutron-cleanup", "neutron-metadata-agent", "neutron-dhcp-agent", "neutron-l3-agent"]
    # what hastack rendered before this change: the same primitives, as one group
    old = re.sub(r"\n(colocation|order|tag) [^\n]*", "", new) + f"group {pacemaker.GROUP} {' '.join(ids)}\n"
    tmp_path.joinpath("pacemaker.crm").write_text(new)
    tmp_path.joinpath("old.crm").write_text(old)
    live = ["fence-net-1", "fence-net-2", pacemaker.GROUP, *ids]
    tmp_path.joinpath("commands").write_bytes(pacemaker.configure_commands(SEED, live))
    argv = pacemaker.apply_argv(pacemaker.stale_resources(SEED, live))
    assert argv[:2] == ["sh", "-c"]
    tmp_path.joinpath("apply.sh").write_text(argv[2])
    done = sh(MIGRATE, {str(tmp_path): GUEST})
    assert done.returncode == 0, done.stdout + done.stderr
    migrated = (tmp_path / "migrated.txt").read_text()
    assert migrated == (tmp_path / "fresh.txt").read_text()
    assert f"tag {pacemaker.GROUP}" in migrated and "group " not in migrated
    assert "<status" in (tmp_path / "running.xml").read_text() and "neutron-l3-agent_start_0" in (
        tmp_path / "running.xml").read_text(), "the agents were running before the migration"
    moved = [k for k in graph(tmp_path / "after.graph") if k[0].split("_")[0] in ids]
    assert moved == [], f"the migration stops or starts {moved}"


# -- qdevice TLS -----------------------------------------------------------------------------------
def host_binds(base: Path, host: str) -> dict[str, str]:
    """Per-host state kept between steps: /etc/corosync/qnetd, /etc/corosync/qdevice, /var/tmp."""
    dirs = {"qnetd": "/etc/corosync/qnetd", "qdevice": "/etc/corosync/qdevice", "tmp": "/var/tmp"}
    out = {}
    for sub, guest in dirs.items():
        (base / host / sub).mkdir(parents=True, exist_ok=True)
        out[str(base / host / sub)] = guest
    return out


def on_host(base: Path, host: str, guest: str) -> Path:
    for src, dst in host_binds(base, host).items():
        if guest.startswith(dst + "/"):
            return Path(src) / guest.removeprefix(dst + "/")
    raise AssertionError(f"{guest} is outside the directories kept per host")


@pytest.fixture(scope="module")
def tls_hosts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every host's directories after running the exchange exactly as listed."""
    base = tmp_path_factory.mktemp("tls")
    for step in corosync.qdevice_tls_steps(SEED):
        if isinstance(step, corosync.Copy):
            dest = on_host(base, step.dest_host, step.dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(on_host(base, step.src_host, step.src), dest)
            continue
        cmd = shlex.join(step.argv)
        if step.unless:
            cmd = f"{shlex.join(step.unless)} || {cmd}"
        done = sh(f"set -e; {cmd}", host_binds(base, step.host))
        assert done.returncode == 0, (step, done.stdout, done.stderr)
    return base


def test_qdevice_tls_exchange_gives_every_member_the_cluster_cert(tls_hosts: Path) -> None:
    for member in ("net-1", "net-2"):
        done = sh(shlex.join(corosync.HAS_CLUSTER_CERT), host_binds(tls_hosts, member))
        assert done.returncode == 0, (member, done.stdout, done.stderr)
    assert (tls_hosts / "ctl-3/qnetd/nssdb/qnetd-cacert.crt").is_file()


# -- the real thing: two members + qnetd, TLS required, in scratch namespaces ----------------------
# Proves the rendered corosync.conf forms a cluster (knet + crypto + the shared authkey), that the
# rendered qnetd options start qnetd, and that the certificates from the exchange above give the
# members qnetd's vote over TLS: 3 votes expected, 3 present.
@pytest.fixture
def switched_netns() -> Iterator[dict[str, str]]:
    """node name -> netns, each with eth0 holding the node's address, joined by a bridge that lives
    in its own namespace (nothing is added to the host's network)."""
    tag = uuid.uuid4().hex[:6]
    sw = f"hastack-sw-{tag}"
    names = {n: f"hastack-{n}-{tag}" for n in ("ctl-3", "net-1", "net-2")}
    made = [sw]
    try:
        ip("netns", "add", sw)
        ip("-n", sw, "link", "add", "br0", "type", "bridge")
        ip("-n", sw, "link", "set", "br0", "up")
        for i, (node, ns) in enumerate(names.items()):
            ip("netns", "add", ns)
            made.append(ns)
            ip("-n", sw, "link", "add", f"p{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("-n", sw, "link", "set", f"p{i}", "master", "br0", "up")
            ip("-n", ns, "addr", "add", f"{SEED.node(node).address}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield names
    finally:
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for _ in range(50):
            if not any(Path(f"/run/netns/{ns}").exists() for ns in made):
                break
            time.sleep(0.1)


QNETD_RUN = """
mkdir -p /run/corosync-qnetd
. /etc/default/corosync-qnetd
corosync-qnetd -f $COROSYNC_QNETD_OPTIONS &
sleep 40
"""
MEMBER_RUN = """
mkdir -p /var/log/corosync
corosync -f &
sleep 3
corosync-qdevice -f &
sleep 30
corosync-quorumtool -s
corosync-qdevice-tool -s -v
"""


def test_members_get_the_qnetd_vote_over_tls(tmp_path: Path, tls_hosts: Path,
                                             switched_netns: dict[str, str]) -> None:
    arb = write_node(SEED, "ctl-3", tmp_path / "ctl-3")
    runs = {"ctl-3": (QNETD_RUN, {**host_binds(tls_hosts, "ctl-3"),
                                  str(arb / "etc/default/corosync-qnetd"): corosync.QNETD_DEFAULTS})}
    for member in ("net-1", "net-2"):
        root = write_node(SEED, member, tmp_path / member)
        runs[member] = (MEMBER_RUN, {**host_binds(tls_hosts, member), **corosync_binds(root)})
    with ThreadPoolExecutor(len(runs)) as pool:
        futures = {n: pool.submit(sh, script, binds, switched_netns[n])
                   for n, (script, binds) in runs.items()}
        out = {n: f.result().stdout + f.result().stderr for n, f in futures.items()}
    for member in ("net-1", "net-2"):
        assert re.search(r"Quorate:\s+Yes", out[member]), out[member]
        assert re.search(r"Expected votes:\s+3", out[member]), out[member]
        assert re.search(r"Total votes:\s+3", out[member]), out[member]
        assert re.search(r"TLS active:\s+Yes \(client certificate sent\)", out[member]), out[member]
