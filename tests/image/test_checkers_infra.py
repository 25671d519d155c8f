"""The rendered infrastructure configs, checked by the real Debian 12 tools inside the lab image.

- haproxy.cfg: `haproxy -c` (it parses without binding, so the VIP and node addresses need not exist),
  then HAProxy actually runs next to keepalived in a scratch network namespace holding the node's
  address: keepalived's track script must see /healthz, VRRP must take the VIP, and drop it when
  HAProxy dies; /stats must demand the password.
- keepalived.conf: `keepalived -t` in a scratch namespace with an interface of the configured name
  (a veth: this kernel has no `dummy`); it fails when the interface is missing. A second test pins
  the reason there is no `authentication` block: keepalived refuses it with VRRP version 3.
- MariaDB: `mariadbd --help --verbose` with the rendered file in mariadb.conf.d, read through Debian's
  own config chain (an unknown option fails it), and the effective values are compared. Then a
  one-node cluster bootstraps from the same file and the rendered health check is asked for real.
- garbd: `garb-systemd start` (Debian's wrapper) with the rendered /etc/default/garb. Galera refuses
  unknown or out-of-range provider options at once; accepted ones leave garbd trying to reach its
  peers until `timeout` stops it (exit 124).
- rabbitmq.conf: `rabbitmq-diagnostics` needs a running node, so the file goes through RabbitMQ's own
  cuttlefish schemas (rabbit + the management plugin), exactly the translation the broker does at
  boot: unknown keys and bad values fail it. definitions.json is loaded at boot by a throwaway
  broker, and every user must authenticate with its secret (proves the password-hash format).
- the health check's systemd units: `systemd-analyze verify` (works without a running systemd).
- memcached.conf: Debian's own wrapper starts memcached from it; it must listen on the node's address.

Files are written world-readable here (the secrets are the fixed test ones): inside the chroot the
daemons' own users must read them, and the real modes are the unit tests' business.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import FixedSecrets, load_example
from hastack.components import galera, garbd, haproxy, keepalived, logins, rabbitmq
from hastack.components.base import Ctx
from hastack.components.registry import desired
from hastack.topology.model import Node, Topology

pytestmark = [pytest.mark.image, pytest.mark.usefixtures("lab_image")]
image = pytest.importorskip("hastack.lab.image")

SCRIPTS = Path(__file__).with_name("infra")
TOOLS = "/hastack-tools"
EXAMPLES = {"seed": load_example("seed.yml"), "four": load_example("four-servers.yml")}
CONTROLLERS = [(ex, n.name) for ex, topo in EXAMPLES.items() for n in topo.controllers]
RABBIT_PLUGINS = "/usr/lib/rabbitmq/lib/rabbitmq_server-3.10.8/plugins"
RABBIT_SCHEMAS = ["rabbit", "rabbitmq_management", "rabbitmq_management_agent"]

Run = subprocess.CompletedProcess[str]
NetnsFactory = Callable[[Topology, Node], str]


def ctx(example: str) -> Ctx:
    return Ctx(EXAMPLES[example], FixedSecrets(None))


@pytest.fixture
def node_files(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write one node's rendered files under a fresh directory (world-readable, see module doc)."""

    def write(example: str, name: str) -> Path:
        root = tmp_path / f"{example}-{name}"
        for f in desired(ctx(example))[name].files:
            target = root / f.path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(f.data)
            target.chmod(0o755 if f.mode & 0o111 else 0o644)
        return root

    return write


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def netns() -> Iterator[NetnsFactory]:
    """Scratch network namespaces, each with a veth named like the topology's interface holding the
    node's address; deleted (and waited for: deletion is asynchronous) at teardown."""
    made: list[str] = []

    def make(topo: Topology, node: Node) -> str:
        name = f"hastack-infra-{uuid.uuid4().hex[:8]}"
        ip("netns", "add", name)
        made.append(name)
        dev = topo.network.interface
        ip("-n", name, "link", "add", dev, "type", "veth", "peer", "name", f"{dev}-peer")
        ip("-n", name, "addr", "add", f"{node.address}/{topo.network.management.prefixlen}", "dev", dev)
        for link in (dev, f"{dev}-peer", "lo"):
            ip("-n", name, "link", "set", link, "up")
        return name

    yield make
    for name in made:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    deadline = time.monotonic() + 10
    while any(Path(f"/run/netns/{n}").exists() for n in made) and time.monotonic() < deadline:
        time.sleep(0.1)


def run(argv: list[str], binds: dict[str, str], netns: str | None = None, timeout: float = 120) -> Run:
    done: Run = image.run_in_image(argv, binds={str(SCRIPTS): TOOLS, **binds}, netns=netns, timeout=timeout)
    return done


def output(done: Run) -> str:
    return done.stdout + done.stderr


# -- HAProxy -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("example", "name"), CONTROLLERS)
def test_haproxy_accepts_config(node_files: Callable[[str, str], Path], example: str, name: str) -> None:
    root = node_files(example, name)
    done = run(["haproxy", "-c", "-f", haproxy.CONF], {str(root / "etc/haproxy"): "/etc/haproxy"})
    assert done.returncode == 0, output(done)
    assert "Configuration file is valid" in output(done)
    assert "[WARNING]" not in output(done) and "[ALERT]" not in output(done), output(done)


def test_vip_follows_haproxy(node_files: Callable[[str, str], Path], netns: NetnsFactory) -> None:
    topo = EXAMPLES["seed"]
    node = topo.controllers[0]
    root = node_files("seed", node.name)
    binds = {str(root / "etc/haproxy"): "/etc/haproxy", str(root / "etc/keepalived"): "/etc/keepalived",
             str(root / "usr/local/share/ca-certificates"): "/usr/local/share/ca-certificates",
             str(root / "usr/local/lib/hastack"): "/usr/local/lib/hastack",
             str(root / "etc/systemd/system"): "/etc/hastack-units"}
    password = ctx("seed").secrets.password(haproxy.STATS_SECRET)
    peers = [str(n.address) for n in keepalived.voters(topo) if n.name != node.name]
    argv = [f"{TOOLS}/vip.sh", str(node.address), str(topo.network.vip), topo.network.interface, password,
            *peers]
    done = run(argv, binds, netns=netns(topo, node))
    lines = done.stdout.splitlines()
    assert "VIP-ACQUIRED" in lines, output(done)
    assert "HEALTHZ 200" in lines and "STATS-NOAUTH 401" in lines and "STATS-AUTH 200" in lines, output(done)
    # the quorum watch: without the other votes the VIP goes, with them it comes back
    assert "NO-QUORUM-VIP-RELEASED" in lines and "QUORUM-VIP-ACQUIRED" in lines, output(done)
    assert "VIP-RELEASED" in lines, output(done)
    assert not [ln for ln in lines if ln.startswith("KEEPALIVED")], output(done)


# -- keepalived ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("example", "name"), CONTROLLERS)
def test_keepalived_accepts_config(node_files: Callable[[str, str], Path], netns: NetnsFactory,
                                   example: str, name: str) -> None:
    topo = EXAMPLES[example]
    root = node_files(example, name)
    done = run(["keepalived", "-t", "-l", "-D", "-f", "/etc/keepalived/keepalived.conf"],
               {str(root / "etc/keepalived"): "/etc/keepalived"}, netns=netns(topo, topo.node(name)))
    assert done.returncode == 0, output(done)
    assert output(done).strip() == ""


def test_keepalived_refuses_authentication_with_vrrp3(node_files: Callable[[str, str], Path],
                                                      netns: NetnsFactory) -> None:
    topo = EXAMPLES["seed"]
    root = node_files("seed", "ctl-1")
    conf = root / "etc/keepalived/keepalived.conf"
    auth = "    authentication {\n        auth_type PASS\n        auth_pass abcdefgh\n    }\n"
    conf.write_text(conf.read_text().replace("    nopreempt\n", "    nopreempt\n" + auth))
    done = run(["keepalived", "-t", "-l", "-D", "-f", "/etc/keepalived/keepalived.conf"],
               {str(root / "etc/keepalived"): "/etc/keepalived"}, netns=netns(topo, topo.node("ctl-1")))
    assert done.returncode != 0
    assert "VRRP version 3 does not support authentication" in output(done)


# -- MariaDB / Galera ----------------------------------------------------------------------------

def help_values(text: str) -> dict[str, str]:
    """The variable table at the end of `mariadbd --help --verbose`."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z0-9-]+)\s{2,}(\S.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


@pytest.mark.parametrize(("example", "name"), CONTROLLERS)
def test_mariadbd_accepts_config(node_files: Callable[[str, str], Path], example: str, name: str) -> None:
    topo = EXAMPLES[example]
    node = topo.node(name)
    root = node_files(example, name)
    done = run(["mariadbd", "--help", "--verbose"],
               {str(root / p.lstrip("/")): p for p in (galera.CONF, galera.MEMBERS_CONF)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[ERROR]" not in done.stderr and "unknown" not in done.stderr.lower(), done.stderr[-2000:]
    values = help_values(done.stdout)
    assert values["bind-address"] == str(node.address)
    assert values["wsrep-on"] == "TRUE"
    assert values["wsrep-cluster-address"] == "gcomm://" + ",".join(galera.gcomm_peers(topo))
    assert values["wsrep-node-address"] == str(node.address)
    assert values["wsrep-provider-options"] == ";".join(galera.provider_options(topo, node))
    assert values["binlog-format"] == "ROW"
    assert values["innodb-autoinc-lock-mode"] == "2"


def users_sql(c: Ctx) -> str:
    return "".join(f"CREATE USER '{u.name}'@'{u.host}' IDENTIFIED BY '{c.secrets.password(u.secret)}';\n"
                   f"GRANT {u.grants} TO '{u.name}'@'{u.host}';\n" for u in galera.DB_USERS)


def test_galera_bootstraps_and_health_check_answers(node_files: Callable[[str, str], Path],
                                                    netns: NetnsFactory, tmp_path: Path) -> None:
    topo = EXAMPLES["seed"]
    node = topo.controllers[0]
    root = node_files("seed", node.name)
    (tmp_path / "users.sql").write_text(users_sql(ctx("seed")))
    binds = {str(root / p.lstrip("/")): p
             for p in (galera.CONF, galera.MEMBERS_CONF, galera.CHECK_CNF, galera.CHECK_SCRIPT)}
    binds[str(tmp_path / "users.sql")] = "/tmp/users.sql"
    done = run([f"{TOOLS}/galera_boot.sh", "/tmp/users.sql"], binds, netns=netns(topo, node))
    lines = done.stdout.splitlines()
    assert "CHECK-NO-USER HTTP/1.1 503 Service Unavailable" in lines, output(done)
    assert "CHECK HTTP/1.1 200 OK" in lines, output(done)
    status = dict(ln.split()[1:3] for ln in lines if ln.startswith("STATUS "))
    assert status == {"wsrep_local_state_comment": "Synced", "wsrep_cluster_status": "Primary",
                      "wsrep_ready": "ON", "wsrep_cluster_size": "1"}, output(done)
    variables = dict(ln.removeprefix("VAR ").split("\t", 1) for ln in lines if ln.startswith("VAR "))
    assert variables["bind_address"] == str(node.address)
    g = topo.tuning.galera
    for option in (f"evs.suspect_timeout = {g.evs_suspect_timeout}", f"gcache.size = {g.gcache_size}",
                   "pc.recovery = true", f"evs.keepalive_period = {g.evs_keepalive_period}"):
        assert option.lower() in variables["wsrep_provider_options"].lower()
    assert not [ln for ln in lines if ln.startswith("LOG ")], output(done)


def test_backup_incremental_and_restore_bring_the_rows_back(node_files: Callable[[str, str], Path],
                                                            netns: NetnsFactory) -> None:
    """The node's side of `hastack backup` and `hastack restore` (agents/db_backup.py) on a real
    one-node Galera cluster with the rendered config and Debian's mariadb-backup."""
    from hastack.agents import db_backup

    topo = EXAMPLES["seed"]
    node = topo.controllers[1]
    root = node_files("seed", node.name)
    binds = {str(root / p.lstrip("/")): p for p in (galera.CONF, galera.MEMBERS_CONF)}
    binds[db_backup.__file__] = "/tmp/db-backup"
    done = run([f"{TOOLS}/db_backup.sh", "/tmp/db-backup", str(node.address)], binds, netns=netns(topo, node),
               timeout=300)
    print(output(done))  # shown when an assertion below fails
    lines = done.stdout.splitlines()

    def doc(word: str) -> dict[str, Any]:
        (line,) = [ln for ln in lines if ln.startswith(f"{word} ")] or [f"{word} {{}}"]
        return dict(json.loads(line.split(" ", 1)[1] or "{}"))

    full, first, incr = doc("FULL"), doc("INCR1"), doc("INCR")
    assert full["kind"] == "full" and full["base"] is None and full["node"], output(done)
    assert first["kind"] == "incr" and first["base"] == first["full"] == full["name"], output(done)
    assert incr["base"] == first["name"] and incr["full"] == full["name"], output(done)  # chained
    uuid, seqno = str(incr["position"]).split(":")
    assert int(seqno) > int(str(full["position"]).split(":")[1]), "the incremental holds later commits"
    prepared = doc("PREPARE")
    assert prepared["chain"] == [full["name"], first["name"], incr["name"]]
    assert prepared["position"] == incr["position"]
    running = next(ln for ln in lines if ln.startswith("RUNNING "))
    assert "mariadbd runs" in running and running.endswith("rc=1"), running  # refused, nothing moved
    grastate = [ln.split(None, 1)[1] for ln in lines if ln.startswith("GRASTATE ")]
    assert f"uuid:    {uuid}" in grastate and f"seqno:   {seqno}" in grastate
    assert "safe_to_bootstrap: 1" in grastate and "OWNERS 0" in lines, output(done)
    # rows 1-5 were in the chain; 6 came after it; the DROP is undone
    assert "ROWS 1,2,3,4,5" in lines, output(done)
    status = dict(ln.split()[1:3] for ln in lines if ln.startswith("STATUS "))
    assert status["wsrep_cluster_status"] == "Primary" and status["wsrep_local_state_uuid"] == uuid
    assert int(status["wsrep_last_committed"]) >= int(seqno)
    assert "ASIDE 1" in lines, "the replaced datadir is kept beside the new one"
    assert next(ln for ln in lines if ln.startswith("EARLY-INCR ")).endswith("rc=1")
    after = [b["name"] for b in doc("AFTER")["backups"]]
    assert after == [doc("FULL2")["name"]] and doc("FULL2")["pruned"] == [full["name"], first["name"], incr["name"]]
    sched = doc("SCHED")  # alone in its cluster and last in that order: it takes it, as a full
    assert sched.get("kind") == "full" and "no full backup" in str(sched.get("note")), output(done)
    assert not [ln for ln in lines if ln.startswith("LOG ")], output(done)


def test_backup_schedule_units_verify(tmp_path: Path) -> None:
    """The service template and both timers of a schedule, as systemd reads them; and the calendars
    hastack's README shows parse."""
    from hastack.topology.model import Backups

    calendars = {"full": "Sun *-*-* 02:00:00", "incremental": "*-*-* 00/6:30:00"}
    topo = EXAMPLES["seed"].model_copy(update={"backups": Backups(**calendars, keep=4)})
    node = topo.controllers[0]
    binds = {}
    for f in galera.backup_files(topo, node):
        local = tmp_path / f.path.lstrip("/").replace("/", "_")
        local.write_bytes(f.data)
        binds[str(local)] = f.path
    units = [f"/etc/systemd/system/{t}" for t in galera.BACKUP_TIMERS.values()]
    done = run(["systemd-analyze", "verify", *units], binds)
    assert done.returncode == 0, output(done)
    done = run(["systemd-analyze", "calendar", *calendars.values(), "daily"], {})
    assert done.returncode == 0 and done.stdout.count("Next elapse:") == 3, output(done)


def test_health_check_units_verify(node_files: Callable[[str, str], Path]) -> None:
    root = node_files("seed", "ctl-2")
    units = [f"/etc/systemd/system/{galera.CHECK_SOCKET}", f"/etc/systemd/system/{galera.CHECK_SERVICE}"]
    binds = {str(root / p.lstrip("/")): p for p in (*units, galera.CHECK_SCRIPT)}
    done = run(["systemd-analyze", "verify", *units], binds)
    assert done.returncode == 0, output(done)


def test_garbd_accepts_its_options(node_files: Callable[[str, str], Path], netns: NetnsFactory) -> None:
    topo = EXAMPLES["four"]
    [node] = topo.garbd_nodes
    root = node_files("four", node.name)
    done = run(["timeout", "5", "/usr/bin/garb-systemd", "start"],
               {str(root / garbd.DEFAULTS.lstrip("/")): garbd.DEFAULTS}, netns=netns(topo, node))
    assert done.returncode == 124, output(done)  # still running, trying to reach its peers
    assert "Starting garbd" in output(done), output(done)  # the wrapper found GALERA_NODES and GALERA_GROUP
    assert "ERROR" not in output(done), output(done)


# -- RabbitMQ ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("example", "name"), CONTROLLERS)
def test_rabbitmq_conf_translates(node_files: Callable[[str, str], Path], example: str, name: str) -> None:
    topo = EXAMPLES[example]
    root = node_files(example, name)
    confs = f"{rabbitmq.CONF},{rabbitmq.PEERS_CONF}"  # conf.d after rabbitmq.conf, as the broker reads them
    done = run([f"{TOOLS}/rabbitmq_conf.escript", RABBIT_PLUGINS, confs, *RABBIT_SCHEMAS],
               {str(root / "etc/rabbitmq"): "/etc/rabbitmq"})
    assert done.returncode == 0, output(done)
    env = done.stdout
    assert f'{{tcp_listeners,[{{"{topo.node(name).address}",5672}}]}}' in env
    peers = re.search(r"\{cluster_nodes,\{\[([^]]*)\],disc\}\}", env)
    assert peers is not None, env
    want = sorted(f"rabbit@{n.name}" for n in topo.brokers)
    assert sorted(peers.group(1).replace("'", "").split(",")) == want
    assert f"{{cluster_partition_handling,{topo.partition_handling}}}" in env
    assert f"{{net_ticktime,{topo.tuning.rabbitmq.net_ticktime}}}" in env


def test_rabbitmq_definitions_load_and_authenticate(node_files: Callable[[str, str], Path],
                                                    netns: NetnsFactory, tmp_path: Path) -> None:
    c = ctx("seed")
    node = c.topo.controllers[0]
    root = node_files("seed", node.name)
    services = rabbitmq.messaging_services(c.topo)
    creds = [("hastack", c.secrets.password(rabbitmq.ADMIN_SECRET))]
    creds += [(lg.user, lg.password) for lg in (logins.login(c.secrets, "rabbit", s) for s in services)]
    lines_in = [*creds, ("nova", "not-the-password")]
    (tmp_path / "credentials").write_text("".join(f"{u} {p}\n" for u, p in lines_in))
    (tmp_path / "hosts").write_text("127.0.0.1 localhost hastack-check\n")
    binds = {str(root / rabbitmq.DEFINITIONS.lstrip("/")): rabbitmq.DEFINITIONS,
             str(tmp_path / "credentials"): "/tmp/credentials", str(tmp_path / "hosts"): "/etc/hosts"}
    done = run([f"{TOOLS}/rabbitmq_boot.sh", "/tmp/credentials"], binds, netns=netns(c.topo, node),
               timeout=180)
    lines = done.stdout.splitlines()
    assert "BOOT-FAILED" not in lines, output(done)
    users = next(ln for ln in lines if ln.startswith("USERS "))
    assert sorted(re.findall(r'"user":"([^"]+)"', users)) == sorted(["hastack", *services])
    assert "guest" not in done.stdout
    vhosts = next(ln for ln in lines if ln.startswith("VHOSTS "))
    assert sorted(re.findall(r'"name":"([^"]+)"', vhosts)) == sorted([*services, "drills"])
    auth = [ln for ln in lines if ln.startswith("AUTH-")]
    assert auth == [f"AUTH-OK {u}" for u, _ in creds] + ["AUTH-FAIL nova"]


# -- memcached -----------------------------------------------------------------------------------

def test_memcached_listens_on_own_address(node_files: Callable[[str, str], Path],
                                          netns: NetnsFactory) -> None:
    topo = EXAMPLES["seed"]
    node = topo.controllers[1]
    root = node_files("seed", node.name)
    script = ("mkdir -p /var/run/memcached && chown memcache /var/run/memcached; "
              "/usr/share/memcached/scripts/systemd-memcached-wrapper /etc/memcached.conf & "
              "for i in $(seq 50); do ss -Hltn 'sport = :11211' | grep -q . && break; sleep 0.1; done; "
              "ss -Hltnu 'sport = :11211' | awk '{print \"LISTEN \" $1 \" \" $5}'; kill %1")
    done = run(["bash", "-c", script], {str(root / "etc/memcached.conf"): "/etc/memcached.conf"},
               netns=netns(topo, node))
    assert done.stdout.split("\n")[:-1] == [f"LISTEN tcp {node.address}:11211"], output(done)
