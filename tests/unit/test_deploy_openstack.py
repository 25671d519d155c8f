"""The openstack deploy stage against a scripted fake cloud: order, secrets only on stdin,
idempotence (a second run changes nothing and runs no create or sync), a failed schema step
stops the stage. And the admin tool's logic against an in-memory Keystone."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import pytest

from conftest import FixedSecrets
from hastack.agents import openstack_admin as tool
from hastack.components import haproxy, rabbitmq, telemetry
from hastack.components import openstack as os_
from hastack.components.base import Ctx
from hastack.components.registry import desired
from hastack.deploy.engine import Deploy, Event, StageFailed, StepFailed
from hastack.deploy.services import (
    LISTENERS,
    TOOL,
    auth_spec,
    cluster_expectations,
    expectations,
    service_units,
    wait_http,
)
from hastack.deploy.stages.openstack import KEY_DIRS, TOKEN_REQUEST, OpenStackStage
from hastack.deploy.stages.openstack_sql import identity_spec
from hastack.facts.files import FILE_STATE_SCRIPT, FileState, render_file_state
from hastack.facts.galera import MARIADB_QUERY
from hastack.facts.haproxy import ADMIN_SCRIPT, SHOW_STAT_SCRIPT
from hastack.facts.system import HTTP_CODES
from hastack.recover.run import openstack_execute
from hastack.topology.model import Topology
from hastack.transport.base import Result
from hastack.transport.fake import Script, on_prefix, on_regex


@dataclass
class Cloud:
    """What the fake hosts hold; the responders read and change it like the real tools would."""

    dbs: set[str] = field(default_factory=set)
    users: dict[str, str] = field(default_factory=dict)  # name -> ok|stale
    grants: set[tuple[str, str]] = field(default_factory=set)
    tables: dict[str, int] = field(default_factory=dict)
    dirs: dict[tuple[str, str], tuple[str, str, int]] = field(default_factory=dict)
    units: dict[tuple[str, str], tuple[bool, bool]] = field(default_factory=dict)  # (active, enabled)
    admin: bool = False
    identity_done: bool = False
    compute_nodes: set[str] = field(default_factory=set)
    mapped: set[str] = field(default_factory=set)
    fail_sync: str = ""
    syncs: list[str] = field(default_factory=list)
    gnocchi_storage: set[str] = field(default_factory=set)  # hosts whose storage directory is initialised
    resource_types: bool = False
    watch_columns: int = 0  # SELECT column grants of the agent watch account on neutron.agents
    prune: dict[str, Any] = field(default_factory=dict)  # what the admin tool's prune answers
    pruned: list[str] = field(default_factory=list)  # the manage commands run for stale rows
    cells: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # name -> (uuid, database, transport)
    nova_transport: str = ""  # [DEFAULT] transport_url of nova.conf, as nova-manage would read it
    haproxy: list[tuple[str, str]] = field(default_factory=list)  # (balancer, admin command line) sent


def answer(host: str, argv: tuple[str, ...], out: str = "", code: int = 0, err: str = "") -> Result:
    return Result(host, argv, code, out, err)


def script_cloud(topo: Topology, cloud: Cloud) -> Script:
    s = Script()
    if "nova" in topo.openstack.services:
        cloud.nova_transport = rabbitmq.transport_url(Ctx(topo, FixedSecrets(None)), "nova")

    def sql_read(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        text = (stdin or b"").decode()
        if "columns_priv" in text:  # the agent watch account (one read: the user, then its column grants)
            user = re.findall(r"WHERE User = '([^']+)'", text)[0]
            return answer(h, argv, (f"watch\t{cloud.users[user]}\n" if user in cloud.users else "")
                          + f"columns\t{cloud.watch_columns}\n")
        rows = [f"db\t{x}" for x in sorted(cloud.dbs)] + [f"grant\t{db}\t{u}" for db, u in sorted(cloud.grants)]
        for u in re.findall(r"WHERE User = '([^']+)'", text):
            if u in cloud.users:
                rows.append(f"user\t{u}\t{cloud.users[u]}")
        return answer(h, argv, "".join(r + "\n" for r in rows))

    def sql_write(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        text = (stdin or b"").decode()
        cloud.dbs |= set(re.findall(r"CREATE DATABASE IF NOT EXISTS `([^`]+)`", text))
        for u in re.findall(r"(?:CREATE USER IF NOT EXISTS|ALTER USER) '([^']+)'", text):
            cloud.users[u] = "ok"
        cloud.grants |= set(re.findall(r"GRANT ALL PRIVILEGES ON `([^`]+)`\.\* TO '([^']+)'", text))
        if "GRANT SELECT (`binary`, `host`, `heartbeat_timestamp`) ON `neutron`.`agents`" in text:
            cloud.watch_columns = 3
        return answer(h, argv)

    def sql_query(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        q = argv[-1]
        if "information_schema.TABLES" in q:
            return answer(h, argv, "".join(f"{db}\t{n}\n" for db, n in cloud.tables.items() if n))
        if "host_mappings" in q:
            return answer(h, argv, "".join(f"{x}\n" for x in sorted(cloud.mapped)))
        if "compute_nodes" in q:
            return answer(h, argv, "".join(f"{x}\n" for x in sorted(cloud.compute_nodes)))
        if "nova_api.cell_mappings" in q:
            return answer(h, argv, "".join(f"{u}\t{n}\t{db}\t{mq}\n" for n, (u, db, mq) in cloud.cells.items()))
        if "gnocchi.resource_type" in q:
            return answer(h, argv, f"{int(cloud.resource_types)}\n")
        raise AssertionError(q)

    def test_file(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        assert argv == ("test", "-f", telemetry.STORAGE_MARKER)
        return answer(h, argv, code=0 if h in cloud.gnocchi_storage else 1)

    def file_states(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        paths = argv[4:]
        states = {p: FileState(p, True, *cloud.dirs[(h, p)][:2], cloud.dirs[(h, p)][2], "directory")
                  for p in paths if (h, p) in cloud.dirs}
        return answer(h, argv, render_file_state(paths, states))

    def install_dir(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        cloud.dirs[(h, argv[-1])] = ("keystone", "keystone", 0o700)
        return answer(h, argv)

    def dpkg(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        return answer(h, argv, "".join(f"{p}\tii \t1:1.0\n" for p in argv[4:]))

    def sync(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        user, cmd = argv[2], argv[4:]
        cloud.syncs.append(shlex.join(cmd))
        if cloud.fail_sync and cloud.fail_sync in shlex.join(cmd):
            return answer(h, argv, code=1, err="OperationalError: (pymysql.err.OperationalError) ...")
        if cmd == telemetry.STORAGE_INIT:
            cloud.gnocchi_storage.add(h)
            return answer(h, argv)
        if cmd == telemetry.RESOURCE_TYPES:
            # like ceilometer-upgrade: it needs Gnocchi's API through the VIP, so a started gnocchi-api
            assert cloud.units.get((h, "gnocchi-api"), (False, False))[0], "ceilometer-upgrade before gnocchi-api"
            first_time = cloud.syncs.count(shlex.join(cmd)) == 1
            assert not (first_time and cloud.units.get((h, "ceilometer-agent-notification"))), \
                "an agent started before its resource types exist"
            cloud.resource_types = True
            return answer(h, argv)
        if cmd[:3] == ("nova-manage", "cell_v2", "map_cell0"):
            cloud.cells["cell0"] = ("uuid-0", cmd[cmd.index("--database_connection") + 1], "none:///")
        if cmd[:3] == ("nova-manage", "cell_v2", "create_cell") and "cell1" not in cloud.cells:
            cloud.cells["cell1"] = ("uuid-1", cmd[cmd.index("--database_connection") + 1], cloud.nova_transport)
        if cmd[:3] == ("nova-manage", "cell_v2", "update_cell"):
            name = next(n for n, c in cloud.cells.items() if c[0] == cmd[cmd.index("--cell_uuid") + 1])
            mq = cmd[cmd.index("--transport-url") + 1] if "--transport-url" in cmd else cloud.nova_transport
            cloud.cells[name] = (cloud.cells[name][0], cmd[cmd.index("--database_connection") + 1], mq)
            return answer(h, argv)
        if cmd[:3] == ("nova-manage", "cell_v2", "discover_hosts"):
            new = cloud.compute_nodes - cloud.mapped
            cloud.mapped |= new
            return answer(h, argv, "".join(f"Creating host mapping for compute host '{n}': x\n" for n in new))
        for dbs in os_.DATABASES.values():
            if any(x.user == user for x in dbs):
                for x in dbs:
                    cloud.tables[x.name] = 10
        # like nova-manage: exit 2 when the cell exists already (an ok_code of that step)
        again = "create_cell" in cmd and cloud.syncs.count(shlex.join(cmd)) > 1
        return answer(h, argv, code=2 if again else 0)

    def show(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        blocks = []
        for u in argv[5:]:
            active, enabled = cloud.units.get((h, u), (False, False))
            blocks.append(f"Id={u}.service\nLoadState=loaded\nActiveState={'active' if active else 'inactive'}\n"
                          f"SubState={'running' if active else 'dead'}\nUnitFileState="
                          f"{'enabled' if enabled else 'disabled'}\n")
        return answer(h, argv, "\n".join(blocks))

    def systemctl(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        verb = argv[1]
        names = [a for a in argv[2:] if not a.startswith("-")]
        for u in names:
            active, enabled = cloud.units.get((h, u), (False, False))
            cloud.units[(h, u)] = (active or verb in ("start", "restart"), enabled or verb == "enable")
            if verb == "start" and u == "nova-compute":
                cloud.compute_nodes.add(h)
        return answer(h, argv)

    def http_codes(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        return answer(h, argv, "".join(f"200 {u}\n" for u in argv[4:]))

    def token(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        body = json.loads(stdin or b"{}")
        assert body["auth"]["identity"]["password"]["user"]["name"] == "admin"
        return answer(h, argv, "201" if cloud.admin else "401")

    def bootstrap(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        assert stdin and stdin.endswith(b"\n")
        cloud.admin = True
        return answer(h, argv)

    def admin_tool(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        spec = json.loads(stdin or b"{}")
        if argv[-1] == "setup":
            changed = [] if cloud.identity_done else [f"created user {u['name']}" for u in spec["users"]]
            cloud.identity_done = True
            return answer(h, argv, json.dumps({"changed": changed}) + "\n")
        if argv[-1] == "prune":
            assert spec["keep"] and all(set(e) == {"service", "binary", "host"} for e in spec["keep"])
            return answer(h, argv, json.dumps({"removed": [], "stale": [], "alive": [], **cloud.prune}) + "\n")
        return answer(h, argv, json.dumps({"ok": True, "missing": [], "seen": {}}) + "\n")

    def manage(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        cloud.pruned.append(f"{h}: {shlex.join(argv)}")
        return answer(h, argv)

    def haproxy_admin(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        cloud.haproxy.append((h, argv[-1]))
        return answer(h, argv)

    def show_stat(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:  # no session held anywhere
        return answer(h, argv, "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,status,type\n")

    s.add(on_prefix("python3", "-c", ADMIN_SCRIPT, times=None, respond=haproxy_admin),
          on_prefix("python3", "-c", SHOW_STAT_SCRIPT, times=None, respond=show_stat),
          on_prefix(*MARIADB_QUERY, times=None, respond=sql_query),
          on_prefix("mariadb", "--batch", "--skip-column-names", times=None, respond=sql_read),
          on_prefix("mariadb", times=None, respond=sql_write),
          on_prefix("sh", "-c", FILE_STATE_SCRIPT, times=None, respond=file_states),
          on_prefix("install", "-d", "-o", "keystone", times=None, respond=install_dir),
          on_prefix("dpkg-query", times=None, respond=dpkg),
          on_prefix("runuser", times=None, respond=sync),
          on_prefix("systemctl", "show", times=None, respond=show),
          on_regex(r"^systemctl (enable|start|restart|reset-failed) ", times=None, respond=systemctl),
          on_prefix("sh", "-c", HTTP_CODES, times=None, respond=http_codes),
          on_prefix(*TOKEN_REQUEST, times=None, respond=token),
          on_regex(r"keystone-manage bootstrap", times=None, respond=bootstrap),
          on_prefix("python3", TOOL, times=None, respond=admin_tool),
          on_regex(r"^(cinder|heat)-manage service ", times=None, respond=manage),
          on_prefix("test", "-f", times=None, respond=test_file))
    return s


def make(topo: Topology, script: Script) -> Deploy:
    ctx = Ctx(topo, FixedSecrets(None))
    return Deploy(topo, desired(ctx), dict(script.fleet(*[n.name for n in topo.nodes])), ctx.secrets)


def run(topo: Topology, s: Script) -> Deploy:
    d = make(topo, s)
    asyncio.run(d.execute([OpenStackStage()]))
    return d


def marks(s: Script) -> list[str]:
    """The first call of each phase, in the order the stage made them."""
    out: list[str] = []

    def mark(name: str) -> None:
        if name not in out:
            out.append(name)

    for c in s.calls:
        if c.kind != "run":
            continue
        cmd = shlex.join(c.argv)
        if c.argv == ("mariadb",):
            mark("databases")
        elif c.argv[0] == "runuser" and "discover_hosts" not in cmd:
            mark("schemas")
        elif c.argv[:3] == ("systemctl", "start", "keystone"):
            mark("keystone")
        elif "keystone-manage bootstrap" in cmd:
            mark("bootstrap")
        elif c.argv[:3] == ("python3", TOOL, "setup"):
            mark("catalog")
        elif c.argv[:2] == ("systemctl", "start") and "nova-api" in c.argv:
            mark("services")
        elif c.argv[:3] == ("python3", TOOL, "gate") and "services" in out:
            mark("gate")
    return out


def test_fresh_cloud_order_and_secrets_only_on_stdin(seed: Topology) -> None:
    cloud = Cloud()
    s = script_cloud(seed, cloud)
    d = run(seed, s)
    assert marks(s) == ["databases", "schemas", "keystone", "bootstrap", "catalog", "services", "gate"]
    assert d.changes > 0
    # every secret the deploy knows, never in any argv of any host (only stdin and file contents)
    argvs = [" ".join(c.argv) for c in s.calls if c.kind == "run"]
    used = [v for v in d.secrets.values() if len(v) >= 6]
    assert used
    for secret in used:
        assert not any(secret in a for a in argvs)
    stdin = b"".join(c.stdin or b"" for c in s.calls)
    assert d.secrets.password("keystone/admin").encode() in stdin
    assert d.secrets.password("db/nova").encode() in stdin
    # schemas ran in db_sync_steps order, each as its own user, all on the first controller
    want = [shlex.join(st.argv) for st in os_.db_sync_steps(seed)]
    assert cloud.syncs[: len(want)] == want
    assert {c.host for c in s.calls if c.kind == "run" and c.argv[0] == "runuser"} == {"ctl-1"}
    # keystone and the services started one controller at a time, in topology order
    starts = [(c.host, c.argv[2]) for c in s.calls if c.kind == "run" and c.argv[:2] == ("systemctl", "start")]
    assert [h for h, u in starts if u == "keystone"] == ["ctl-1", "ctl-2", "ctl-3"]
    hosts = [h for h, u in starts if h.startswith("ctl") and u != "keystone"]
    assert hosts == sorted(hosts)
    # the key directories were fixed to 0700 keystone:keystone on every controller
    for n in ("ctl-1", "ctl-2", "ctl-3"):
        for p in KEY_DIRS:
            assert cloud.dirs[(n, p)] == ("keystone", "keystone", 0o700)
    # the new compute got mapped, and every unit of every node runs and is enabled
    assert cloud.mapped == {"cmp-1"}
    for node in seed.nodes:
        for u in service_units(seed, node):
            assert cloud.units[(node.name, u)] == (True, True), (node.name, u)
    # no Pacemaker-owned agent was started by this stage
    assert not any(cloud.units.get((n, u)) for n in ("net-1", "net-2")
                   for u in ("neutron-l3-agent", "neutron-dhcp-agent", "neutron-metadata-agent"))


def test_second_run_changes_nothing_and_runs_no_create_or_sync(seed: Topology) -> None:
    cloud = Cloud()
    s = script_cloud(seed, cloud)
    run(seed, s)
    before = len(s.calls)
    d = run(seed, s)
    again = s.calls[before:]
    assert d.changes == 0
    cmds = [shlex.join(c.argv) for c in again if c.kind == "run"]
    assert not any(c.startswith(("runuser", "systemctl start", "systemctl restart", "systemctl enable",
                                 "install -d")) for c in cmds)
    assert not any("bootstrap" in c for c in cmds)
    assert not any(c.argv == ("mariadb",) for c in again)  # nothing to create
    assert not [c for c in again if c.kind == "put"]


def test_recover_starts_every_stopped_unit_except_on_lost_nodes_then_gates(seed: Topology) -> None:
    """recover all's last step: a daemon that gave up while its cluster was down (cinder-scheduler in
    CI, 2026-12-05) is started again, after its failed state is cleared; a node named lost is left
    alone; then the APIs and the service lists are waited for."""
    cloud = Cloud()
    s = script_cloud(seed, cloud)
    run(seed, s)
    cloud.units[("ctl-2", "cinder-scheduler")] = (False, True)
    cloud.units[("ctl-1", "nova-conductor")] = (False, True)
    before = len(s.calls)
    d = make(seed, s)
    asyncio.run(openstack_execute(d, ["ctl-1"]))
    cmds = [(c.host, shlex.join(c.argv)) for c in s.calls[before:] if c.kind == "run"]
    starts = [(h, c) for h, c in cmds if c.startswith(("systemctl start", "systemctl reset-failed"))]
    assert starts == [("ctl-2", "systemctl reset-failed cinder-scheduler"),
                      ("ctl-2", "systemctl start --no-block cinder-scheduler")]
    assert cloud.units[("ctl-1", "nova-conductor")] == (False, True)  # lost: untouched
    assert not any(h == "ctl-1" for h, _ in cmds)
    assert any(c.startswith(f"python3 {TOOL} gate") for _, c in cmds)
    assert d.started == {"ctl-2": {"cinder-scheduler"}}


def test_a_changed_config_restarts_its_units_rolling_without_resync(seed: Topology) -> None:
    cloud = Cloud()
    s = script_cloud(seed, cloud)
    run(seed, s)
    before = len(s.calls)
    d = make(seed, s)
    for h in ("ctl-1", "ctl-2", "ctl-3"):
        d.restarts[h] = {"nova-api", "nova-scheduler"}
    asyncio.run(d.execute([OpenStackStage()]))
    restarts = [(c.host, c.argv[2:]) for c in s.calls[before:] if c.argv[:2] == ("systemctl", "restart")]
    # one controller at a time; on each the API first, the daemon once the APIs answer
    assert restarts == [(h, (u,)) for h in ("ctl-1", "ctl-2", "ctl-3") for u in ("nova-api", "nova-scheduler")]
    assert d.changes == 6
    # each node's nova-api out of every HAProxy's rotation around its restart, back in after
    compute = [a.name for a in haproxy.apis(seed) if a.unit == "nova-api"]
    assert cloud.haproxy == [(b, f"set server {px}/{h} state {st}") for h in ("ctl-1", "ctl-2", "ctl-3")
                             for st in ("drain", "ready") for b in ("ctl-1", "ctl-2", "ctl-3") for px in compute]
    assert not any(c.argv and c.argv[0] == "runuser" for c in s.calls[before:])


def test_cells_are_mapped_as_templates_and_a_stale_mapping_follows_nova_conf(seed: Topology) -> None:
    """Fresh: cell0 and cell1 mapped with database templates (no login in them), cell1's transport
    from nova.conf. A mapping left from before (literal URLs) or a cell1 transport that no longer
    matches (a rotation, a replaced broker) is updated from nova.conf, never with a secret in argv,
    and Nova's units restart on every controller, one controller at a time."""
    cloud = Cloud()
    s = script_cloud(seed, cloud)
    run(seed, s)
    assert cloud.cells == {"cell0": ("uuid-0", os_.CELL0_DB, "none:///"),
                           "cell1": ("uuid-1", os_.CELL1_DB, cloud.nova_transport)}
    cloud.cells["cell0"] = ("uuid-0", "mysql+pymysql://nova:old@10.77.0.10/nova_cell0", "none:///")
    cloud.cells["cell1"] = ("uuid-1", "mysql+pymysql://nova:old@10.77.0.10/nova", "rabbit://nova:old@x:5672/nova")
    before = len(s.calls)
    d = run(seed, s)
    assert cloud.cells == {"cell0": ("uuid-0", os_.CELL0_DB, "none:///"),
                           "cell1": ("uuid-1", os_.CELL1_DB, cloud.nova_transport)}
    updates = [c.argv for c in s.calls[before:] if "update_cell" in c.argv]
    assert len(updates) == 2 and not any(v in " ".join(a) for a in updates for v in d.secrets.values() if len(v) > 5)
    restarts = [(c.host, u) for c in s.calls[before:] if c.argv[:2] == ("systemctl", "restart") for u in c.argv[2:]]
    hosts = [h for h, _ in restarts]
    assert hosts == sorted(hosts) and set(hosts) == {"ctl-1", "ctl-2", "ctl-3"}
    assert {u for _, u in restarts} == {u for u in service_units(seed, seed.node("ctl-1")) if u.startswith("nova-")}
    before = len(s.calls)
    assert run(seed, s).changes == 0 and not [c for c in s.calls[before:] if "update_cell" in c.argv]


def test_a_stale_sql_password_is_reset_and_a_lost_database_resynced(seed: Topology) -> None:
    cloud = Cloud()
    s = script_cloud(seed, cloud)
    run(seed, s)
    cloud.users["glance"] = "stale"
    cloud.tables["heat"] = 0
    n = len(cloud.syncs)
    d = run(seed, s)
    assert cloud.syncs[n:] == ["heat-manage db_sync"]
    writes = b"".join(c.stdin or b"" for c in s.calls if c.argv == ("mariadb",))
    assert b"ALTER USER 'glance'@'%'" in writes
    assert d.changes == 2


def test_a_failed_schema_step_stops_the_stage(seed: Topology) -> None:
    cloud = Cloud(fail_sync="nova-manage db sync")
    s = script_cloud(seed, cloud)
    d = make(seed, s)
    with pytest.raises(StageFailed) as exc:
        asyncio.run(d.execute([OpenStackStage()]))
    text = str(exc.value)
    assert "nova schema" in text and "exit code 1" in text and "OperationalError" in text
    assert cloud.syncs[-1] == "nova-manage db sync"  # nothing after it
    assert not any("neutron-db-manage" in x for x in cloud.syncs)
    assert not any(c.argv[:2] == ("systemctl", "start") for c in s.calls if c.kind == "run")
    stamps = {c.path for c in s.puts() if "schema-" in c.path}
    assert stamps == {f"/var/lib/hastack/schema-{x}" for x in ("keystone", "glance", "placement")}
    # the next run continues: nova again from its first step, the earlier services are not redone
    cloud.fail_sync = ""
    n = len(cloud.syncs)
    run(seed, s)
    assert cloud.syncs[n].startswith("nova-manage api_db sync")
    assert not any(x.startswith(("keystone-manage", "glance-manage", "placement-manage")) for x in cloud.syncs[n:])


def test_a_package_upgrade_resyncs_that_service_only(seed: Topology) -> None:
    cloud = Cloud()
    s = script_cloud(seed, cloud)
    run(seed, s)
    s.file("ctl-1", "/var/lib/hastack/schema-cinder", "python3-cinder=1:0.9\n")
    n = len(cloud.syncs)
    d = run(seed, s)
    assert cloud.syncs[n:] == ["cinder-manage db sync"]
    assert d.changes == 1


def test_expectations_follow_the_topology(seed: Topology) -> None:
    got = {(e.service, e.binary, e.host) for e in expectations(seed)}
    for c in ("ctl-1", "ctl-2", "ctl-3"):
        assert {("compute", "nova-scheduler", c), ("compute", "nova-conductor", c),
                ("volumev3", "cinder-scheduler", c), ("orchestration", "heat-engine", c)} <= got
    assert ("compute", "nova-compute", "cmp-1") in got
    assert ("network", "neutron-linuxbridge-agent", "network-agents") in got
    assert ("network", "neutron-linuxbridge-agent", "cmp-1") in got
    assert not any(h in ("net-1", "net-2") for _, _, h in got)
    assert {(e.binary, e.host) for e in cluster_expectations(seed)} == {
        ("neutron-metadata-agent", "network-agents"), ("neutron-dhcp-agent", "network-agents"),
        ("neutron-l3-agent", "network-agents")}


def test_identity_spec_names_only_the_vip(seed: Topology) -> None:
    s = script_cloud(seed, Cloud())
    spec = identity_spec(seed, (d := make(seed, s)).secrets, auth_spec(d))
    urls = [u for svc in spec["services"] for u in svc["endpoints"].values()]
    assert urls and all(u.startswith("https://10.77.0.10:") for u in urls)
    assert {svc["type"] for svc in spec["services"]} >= {"identity", "compute", "network", "volumev3",
                                                          "orchestration", "cloudformation", "image", "placement"}
    names = {u["name"]: u for u in spec["users"]}
    assert set(names) == {"glance", "placement", "nova", "neutron", "cinder", "heat", "heat_domain_admin"}
    assert names["heat_domain_admin"]["grants"] == [{"role": "admin", "domain": "heat"}]
    assert {"role": "service", "project": "service", "project_domain": "Default"} in names["nova"]["grants"]
    assert set(spec["roles"]) == {"service", "heat_stack_owner", "heat_stack_user"}


# -- the admin tool's logic against an in-memory Keystone -------------------------------------------
class FakeKeystone:
    """Just enough of Keystone v3 (and the service lists) for tool.setup and tool.gate."""

    def __init__(self) -> None:
        self.n = 0
        self.domains = [{"id": "default", "name": "Default"}]
        self.roles = [{"id": "r-admin", "name": "admin"}, {"id": "r-member", "name": "member"}]
        self.projects = [{"id": "p-admin", "name": "admin", "domain_id": "default"}]
        self.users: list[dict[str, Any]] = [{"id": "u-admin", "name": "admin", "domain_id": "default"}]
        self.passwords = {"u-admin": "x"}
        self.assignments: set[tuple[str, str, str, str]] = set()  # role, kind, target, user
        self.regions = {"RegionOne"}
        self.services = [{"id": "s-keystone", "name": "keystone", "type": "identity"}]
        self.endpoints: list[dict[str, Any]] = []
        self.writes: list[str] = []
        self.lists: dict[str, Any] = {}
        self.auths = 0

    def new(self, kind: str) -> str:
        self.n += 1
        return f"{kind}-{self.n}"

    def __call__(self, method: str, service: str, path: str, body: dict[str, Any] | None,
                 authenticated: bool) -> tuple[int, Any]:
        if service != "identity":
            return (200, self.lists[service]) if service in self.lists else (503, None)
        if method != "GET" and path != "/auth/tokens":
            self.writes.append(f"{method} {path}")
        base, _, query = path.partition("?")
        q = dict(kv.split("=", 1) for kv in query.split("&") if kv)
        parts = base.strip("/").split("/")

        def pick(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [i for i in items if all(i.get(k) == v for k, v in q.items())]

        if path == "/auth/projects":
            return 200, {"projects": []}
        if path == "/auth/tokens":
            self.auths += 1
            user = body["auth"]["identity"]["password"]["user"] if body else {}
            return (201 if self.passwords.get(user["id"]) == user["password"] else 401), None
        coll = {"domains": self.domains, "roles": self.roles, "projects": self.projects, "users": self.users,
                "services": self.services, "endpoints": self.endpoints}
        if method == "GET" and parts[0] in coll and len(parts) == 1:
            return 200, {parts[0]: pick(coll[parts[0]])}
        if method == "POST" and parts[0] in coll:
            kind = parts[0][:-1]
            item = dict(body[kind]) if body else {}
            item["id"] = self.new(kind)
            if kind == "user":
                self.passwords[item["id"]] = item.pop("password")
            coll[parts[0]].append(item)
            return 201, {kind: item}
        if parts[0] == "role_assignments":
            uid = q["user.id"]
            out = [{"role": {"id": r}, "scope": {k[:-1]: {"id": t}}, "user": {"id": u}}
                   for r, k, t, u in self.assignments if u == uid]
            return 200, {"role_assignments": out}
        if method == "PUT" and len(parts) == 6:
            self.assignments.add((parts[5], parts[0], parts[1], parts[3]))
            return 204, None
        if parts[0] == "regions":
            if method == "GET":
                return (200, {"region": {"id": parts[1]}}) if parts[1] in self.regions else (404, None)
            self.regions.add(body["region"]["id"] if body else "")
            return 201, {"region": {}}
        if method == "PATCH" and parts[0] == "endpoints":
            e = next(e for e in self.endpoints if e["id"] == parts[1])
            e.update(body["endpoint"] if body else {})
            return 200, {"endpoint": e}
        if method == "PATCH" and parts[0] == "users":
            self.passwords[parts[1]] = body["user"]["password"] if body else ""
            return 200, {"user": {}}
        if method == "DELETE" and parts[0] == "endpoints":
            self.endpoints[:] = [e for e in self.endpoints if e["id"] != parts[1]]
            return 204, None
        raise AssertionError(f"{method} {path}")


def spec_of(seed: Topology) -> dict[str, Any]:
    return identity_spec(seed, (d := make(seed, script_cloud(seed, Cloud()))).secrets, auth_spec(d))


def test_tool_setup_creates_what_is_missing_then_nothing(seed: Topology) -> None:
    ks = FakeKeystone()
    spec = spec_of(seed)
    changed = tool.setup(ks, spec)
    assert "created project service" in changed and "created domain heat" in changed
    assert "created role service" in changed
    assert "granted role admin on domain heat to heat_domain_admin" in changed
    n_endpoints = sum(len(s["endpoints"]) for s in spec["services"])
    assert len(ks.endpoints) == n_endpoints
    assert len([c for c in changed if c.startswith("granted")]) == 2 * 6 + 1
    ks.writes.clear()
    assert tool.setup(ks, spec) == []
    assert ks.writes == []


def test_tool_setup_fixes_a_wrong_endpoint_a_duplicate_and_a_password(seed: Topology) -> None:
    ks = FakeKeystone()
    spec = spec_of(seed)
    tool.setup(ks, spec)
    nova = next(s for s in ks.services if s["type"] == "compute")
    ep = next(e for e in ks.endpoints if e["service_id"] == nova["id"] and e["interface"] == "public")
    ep["url"] = "http://10.77.0.11:8774/v2.1"
    ks.endpoints.append({**ep, "id": "dup"})
    glance = next(u for u in ks.users if u["name"] == "glance")
    ks.passwords[glance["id"]] = "old"
    changed = tool.setup(ks, spec)
    assert sorted(changed) == sorted(["updated the public endpoint of nova: https://10.77.0.10:8774/v2.1",
                                      "deleted a duplicate public endpoint of nova (http://10.77.0.11:8774/v2.1)",
                                      "reset the password of user glance"])
    assert tool.setup(ks, spec) == []


def test_tool_remembers_working_passwords_and_checks_a_changed_secret(seed: Topology) -> None:
    ks = FakeKeystone()
    spec = spec_of(seed)
    known: dict[str, str] = {}
    tool.setup(ks, spec, known)
    assert ks.auths == 0 and len(known) == 7  # created with the password: nothing to check
    assert tool.setup(ks, spec, known) == [] and ks.auths == 0
    assert all(spec["users"][0]["password"] not in v for v in known.values())
    glance = next(u for u in spec["users"] if u["name"] == "glance")
    glance["password"] = "a-new-secret"
    assert tool.setup(ks, spec, known) == ["reset the password of user glance"]
    assert ks.auths == 1
    assert tool.setup(ks, spec, known) == [] and ks.auths == 1


def test_tool_gate_waits_for_every_row_up() -> None:
    ks = FakeKeystone()
    expect = [{"service": "compute", "binary": "nova-compute", "host": "cmp-1"},
              {"service": "network", "binary": "neutron-l3-agent", "host": "network-agents"},
              {"service": "orchestration", "binary": "heat-engine", "host": "ctl-1"}]
    ks.lists = {"compute": {"services": [{"binary": "nova-compute", "host": "cmp-1", "state": "down",
                                          "status": "enabled"}]},
                "orchestration": {"services": [{"binary": "heat-engine", "host": "ctl-1", "status": "down"},
                                               {"binary": "heat-engine", "host": "ctl-1", "status": "up"}]}}
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s
        if now[0] > 10:  # the agent shows up and the compute reports in
            ks.lists["network"] = {"agents": [{"binary": "neutron-l3-agent", "host": "network-agents",
                                               "alive": True, "admin_state_up": True}]}
            ks.lists["compute"]["services"][0]["state"] = "up"

    out = tool.gate(ks, {"expect": expect, "timeout": 5, "interval": 2}, clock=lambda: now[0], sleep=sleep)
    assert not out["ok"]
    assert out["missing"] == ["compute: nova-compute@cmp-1", "network: neutron-l3-agent@network-agents"]
    assert out["seen"]["network"] == "HTTP 503"
    out = tool.gate(ks, {"expect": expect, "timeout": 60, "interval": 2}, clock=lambda: now[0], sleep=sleep)
    assert out["ok"] and out["missing"] == []


def test_four_servers_without_nova_converges_too(no_nova: Topology) -> None:
    """No compute service, no computes: no discovery, no nova rows expected; a re-run changes nothing."""
    four = no_nova
    cloud = Cloud()
    s = script_cloud(four, cloud)
    run(four, s)
    assert not any("nova" in x for x in cloud.syncs)
    assert not any("discover_hosts" in shlex.join(c.argv) for c in s.calls if c.kind == "run")
    assert {e.service for e in expectations(four)} == {"network", "volumev3", "orchestration"}
    assert run(four, s).changes == 0


def test_telemetry_storage_on_every_controller_and_resource_types_once(four: Topology) -> None:
    """Gnocchi's per-controller storage initialised on each controller before its API; ceilometer's
    resource types created once, on the first controller, after Gnocchi answers and before any
    ceilometer agent; neither again on a re-run, but again when the resource types are gone."""
    cloud = Cloud()
    s = script_cloud(four, cloud)
    run(four, s)
    assert cloud.gnocchi_storage == {"ctl-1", "ctl-2"}
    ups = [c.host for c in s.calls if c.kind == "run" and c.argv[4:] == telemetry.RESOURCE_TYPES]
    assert ups == ["ctl-1"] and cloud.resource_types
    for n in ("ctl-1", "ctl-2"):
        calls = [shlex.join(c.argv) for c in s.calls if c.kind == "run" and c.host == n]
        init = next(i for i, c in enumerate(calls) if "gnocchi-upgrade --skip-index" in c)
        api = next(i for i, c in enumerate(calls) if c.startswith("systemctl start") and "gnocchi-api" in c)
        assert init < api
    before = len(s.calls)
    assert run(four, s).changes == 0
    assert not [c for c in s.calls[before:] if c.kind == "run" and c.argv[0] == "runuser"]
    cloud.resource_types = False  # the gnocchi database was re-created
    run(four, s)
    assert [c.host for c in s.calls[before:] if c.kind == "run" and c.argv[4:] == telemetry.RESOURCE_TYPES] == ["ctl-1"]


class ProbeOnly:
    """Just enough of Deploy for wait_http: Keystone answers, every other probe 000, the listeners
    script answers."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    async def run(self, host: str, argv: list[str], step: str, *, check: bool = True, **_: Any) -> Result:
        self.calls.append(tuple(argv))
        if argv[2] == HTTP_CODES:
            return answer(host, tuple(argv), "".join(f"{200 if ':5000/' in u else '000'} {u}\n" for u in argv[4:]))
        assert argv[2] == LISTENERS and not check
        return answer(host, tuple(argv), "10.77.0.11:9696: pid 9, neutron-api.service ActiveState=active\n")

    async def fact(self, host: str, fact: Any, step: str) -> Any:
        return fact.parse(await self.run(host, list(fact.argv), step))


def test_an_api_that_never_answers_fails_its_gate_with_who_listens() -> None:
    d = ProbeOnly()
    urls = [("http://10.77.0.11:9696/healthcheck", 200), ("http://10.77.0.11:5000/healthcheck", 200)]
    with pytest.raises(StepFailed) as err:
        asyncio.run(wait_http(d, "ctl-1", urls, "every API on ctl-1", timeout=0.1))  # type: ignore[arg-type]
    text = str(err.value)
    assert err.value.code == "DEPLOY-GATE-TIMEOUT" and err.value.step == "gate: every API on ctl-1"
    assert "http://10.77.0.11:9696/healthcheck -> 000" in text
    assert "neutron-api.service ActiveState=active" in text
    assert "5000" not in text.split("last seen")[1].split("\n")[0]
    assert d.calls[-1][4:] == ("10.77.0.11:9696",)  # only the silent port is looked into


def test_tool_prune_deletes_the_down_rows_of_hosts_left_out_and_names_the_live_ones() -> None:
    """ctl-2 was replaced by ctl-4: its nova rows go through Nova's API, its Cinder and Heat rows are
    returned for their manage commands, a row still up is only named, rows of kept hosts stay."""
    ks = FakeKeystone()
    deleted: list[str] = []

    def http(method: str, service: str, path: str, body: dict[str, Any] | None, authenticated: bool
             ) -> tuple[int, Any]:
        if method == "DELETE":
            deleted.append(f"{service} {path}")
            return 204, None
        return ks(method, service, path, body, authenticated)

    ks.lists = {
        "compute": {"services": [
            {"id": 1, "binary": "nova-scheduler", "host": "ctl-1", "state": "up", "status": "enabled"},
            {"id": 2, "binary": "nova-scheduler", "host": "ctl-2", "state": "down", "status": "enabled"},
            {"id": 3, "binary": "nova-conductor", "host": "ctl-2", "state": "up", "status": "enabled"},
            {"id": 4, "binary": "nova-scheduler", "host": "ctl-4", "state": "down", "status": "enabled"}]},
        "volumev3": {"services": [
            {"binary": "cinder-scheduler", "host": "ctl-2", "state": "down", "status": "enabled"}]},
        "orchestration": {"services": [{"id": "e1", "binary": "heat-engine", "host": "ctl-2", "status": "down"}]},
    }
    keep = [{"service": "compute", "binary": b, "host": h} for b in ("nova-scheduler", "nova-conductor")
            for h in ("ctl-1", "ctl-4")]
    keep += [{"service": "volumev3", "binary": "cinder-scheduler", "host": "ctl-1"},
             {"service": "orchestration", "binary": "heat-engine", "host": "ctl-1"}]
    out = tool.prune(http, {"keep": keep})
    assert deleted == ["compute /os-services/2"]  # ctl-4's row is down but kept: its host is in the topology
    assert out["removed"] == ["nova-scheduler@ctl-2"]
    assert out["alive"] == ["nova-conductor@ctl-2"]
    assert out["stale"] == [["orchestration", "heat-engine", "ctl-2"], ["volumev3", "cinder-scheduler", "ctl-2"]]


def test_the_rows_of_a_replaced_controller_go_through_each_services_own_way(seed: Topology) -> None:
    cloud = Cloud()
    s = script_cloud(seed, cloud)
    run(seed, s)
    assert cloud.pruned == []  # nothing stale: no manage command
    cloud.prune = {"removed": ["nova-scheduler@ctl-9"], "alive": ["nova-conductor@ctl-8"],
                   "stale": [["volumev3", "cinder-scheduler", "ctl-9"], ["orchestration", "heat-engine", "ctl-9"],
                             ["orchestration", "heat-engine", "ctl-9"]]}
    events: list[Event] = []
    d = make(seed, s)
    d.emit = events.append
    asyncio.run(d.execute([OpenStackStage()]))
    assert cloud.pruned == ["ctl-1: cinder-manage service remove cinder-scheduler ctl-9",
                            "ctl-1: heat-manage service clean"]
    said = [e.message for e in events]
    assert any("deleted the service row nova-scheduler@ctl-9" in m for m in said)
    assert any("nova-conductor@ctl-8 is up although its host is not in the topology" in m for m in said)


def test_a_keystone_only_cloud_with_network_nodes_asks_no_service_list() -> None:
    """The status lab (Keystone only, network nodes for Pacemaker): nothing to gate or prune, so the
    admin tool's prune is never run (CI, 2026-12-06: it asked the catalog for a network endpoint)."""
    from pathlib import Path

    from hastack.topology.load import load

    topo = load(Path(__file__).resolve().parents[1] / "lab" / "status.yml").topology
    assert topo is not None and topo.network_nodes and not topo.runs("neutron")
    assert expectations(topo) == [] and cluster_expectations(topo) == []
    cloud = Cloud()
    s = script_cloud(topo, cloud)
    run(topo, s)
    assert not [c for c in s.calls if c.kind == "run" and c.argv[:3] == ("python3", TOOL, "prune")]
