"""`hastack plan` lists every step deploy takes (issue 15): the stages' previews on a scripted fleet,
fresh, deployed with nothing to change, and deployed with one changed HAProxy timing. The plan
reads only: every command it runs is one of the read-only facts listed in READS."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from recordings import load as recorded

from conftest import FixedSecrets
from hastack.components import keepalived, pacemaker, rabbitmq, telemetry
from hastack.components import openstack as os_
from hastack.components.base import Ctx
from hastack.components.registry import desired
from hastack.deploy.run import PlanResult, plan
from hastack.deploy.stages.galera import GaleraStage
from hastack.deploy.stages.openstack import KEY_DIRS, SCHEMA_PACKAGES, STAMP_DIR, version_stamp
from hastack.facts import FileState, crm_mon, galera_status, grastate, packages, render_file_state
from hastack.facts.files import FILE_STATE_SCRIPT
from hastack.facts.galera import sql_accounts, table_counts
from hastack.facts.pacemaker import resource_ids
from hastack.facts.rabbitmq import cluster_status, stopped_vhosts
from hastack.plan.steps import Step, changes, refusals
from hastack.topology.model import Topology
from hastack.transport.base import Result
from hastack.transport.fake import Script, on_fact, on_prefix, on_regex

READS = [
    ("sh", "-c", FILE_STATE_SCRIPT), ("dpkg-query", "-W"), ("systemctl", "show"),
    ("mariadb", "--connect-timeout=5", "-N", "-B", "-e"),
    ("rabbitmqctl", "-q", "cluster_status"), ("rabbitmqctl", "-q", "list_vhosts"), ("cibadmin", "-Q"),
    ("crm_mon",), grastate().argv[:3], ("python3", "-c"), ("mariadb", "--batch", "--skip-column-names"),
    ("corosync-cmapctl", "-g"),
]


def _reads_only(s: Script) -> None:
    for c in s.calls:
        if c.kind == "run" and c.argv[:2] == ("mariadb", "--batch"):  # SQL on stdin: reads only
            assert c.stdin and all(line.startswith("SELECT ") for line in c.stdin.decode().splitlines()), c.stdin
    for argv in s.runs():
        assert any(argv[:len(r)] == r for r in READS), f"the plan ran {argv[:4]}"
        if argv[:2] == ("python3", "-c"):
            assert argv[-1] == "show servers state"
        if argv[:2] == ("mariadb", "--connect-timeout=5"):
            assert re.match(r"(SELECT|SHOW) ", argv[5]), argv
    assert s.puts() == []


def _units(active: dict[str, set[str]]):  # type: ignore[no-untyped-def]
    def respond(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        names = argv[argv.index("--") + 1:]
        on = active.get(h, set())
        text = "\n\n".join(
            f"Id={u}\nLoadState=loaded\nActiveState={'active' if u in on else 'inactive'}\n"
            f"SubState={'running' if u in on else 'dead'}\nUnitFileState={'enabled' if u in on else 'disabled'}"
            for u in names)
        return Result(h, argv, 0, text + "\n", "")
    return respond


def _packages(installed: bool):  # type: ignore[no-untyped-def]
    def respond(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        names = argv[4:]
        if not installed:
            return Result(h, argv, 1, "", "".join(f"dpkg-query: no packages found matching {n}\n" for n in names))
        return Result(h, argv, 0, "".join(f"{n}\tii \t1.0-1\n" for n in names), "")
    return respond


def _file_state(s: Script, dirs: set[str]):  # type: ignore[no-untyped-def]
    """Files from the script's store; the paths in `dirs` as keystone's 0700 directories."""
    def respond(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        paths = argv[4:]
        states = {p: FileState.of(p, f.data, owner=f.owner, group=f.group, mode=f.mode)
                  for p in paths if (f := s.files.get((h, p))) is not None}
        states |= {p: FileState(p, True, "keystone", "keystone", 0o700, "directory", None)
                   for p in paths if p in dirs and (h, p) in s.files}
        return Result(h, argv, 0, render_file_state(paths, states), "")
    return respond


SECRETS = FixedSecrets(None)
"""One secrets store for the fleet's files and the plan: the cluster's CA and certificates are in it."""


def _run(topo: Topology, s: Script) -> PlanResult:
    ctx = Ctx(topo, SECRETS)
    result = asyncio.run(plan(ctx, dict(s.fleet(*[n.name for n in topo.nodes]))))
    _reads_only(s)
    return result


def _texts(steps: list[Step], host: str | None = None) -> list[str]:
    return [s.text for s in steps if host in (None, s.host)]


def fresh(topo: Topology) -> Script:
    """Hosts with nothing on them: no files, no packages, every unit stopped, no daemon answers."""
    s = Script()
    s.add(on_prefix("sh", "-c", FILE_STATE_SCRIPT, "sh", times=None, respond=_file_state(s, set())),
          on_prefix("dpkg-query", "-W", times=None, respond=_packages(False)),
          on_prefix("systemctl", "show", times=None, respond=_units({})),
          on_prefix(*grastate().argv[:3], times=None, exit_status=66),  # no grastate.dat, no broker database
          on_regex(".*", times=None, exit_status=1, stderr="not running"))
    return s


def accounts_rows(topo: Topology) -> str:
    """The OpenStack stage's read of databases, grants and users as a deployed cluster answers it."""
    from hastack.deploy.stages.openstack_sql import accounts

    a = accounts(topo, SECRETS)
    return "".join([*(f"db\t{db.name}\n" for db in a.dbs), *(f"grant\t{db.name}\t{db.user}\n" for db in a.dbs),
                    *(f"user\t{u}\tok\n" for u in a.users)])


def brokers_json(topo: Topology) -> str:
    """`cluster_status` of a whole cluster of `topo`'s brokers: the seed lab's recording for the seed,
    its shape with the topology's broker names for the others."""
    doc = json.loads(recorded("rabbitmqctl", "lab-healthy").stdout)
    names = [rabbitmq.nodename(n) for n in topo.brokers]
    return json.dumps({**doc, "disk_nodes": names, "running_nodes": names})


def deployed(topo: Topology) -> Script:
    """Hosts as a finished deploy of `topo` leaves them (the daemons' answers are the seed lab's
    recordings)."""
    want = desired(Ctx(topo, SECRETS))
    s = Script()
    active: dict[str, set[str]] = {}
    for n in topo.nodes:
        for f in want[n.name].files:
            s.file(n.name, f.path, f.data, owner=f.owner, group=f.group, mode=f.mode)
        active[n.name] = set(want[n.name].units) | {"corosync", "pacemaker", "corosync-qnetd", "garbd",
                                                    keepalived.QUORUM_UNIT, keepalived.GUARD_UNIT}
        if rabbitmq.runs_watch(topo, n):
            active[n.name].add(rabbitmq.PEERS_UNIT)
        if n.has("network"):
            active[n.name] -= set(pacemaker.group_units(topo))
            if not n.has("controller"):
                active[n.name] -= {"haproxy", "keepalived"}
    for n in topo.brokers:
        s.file(n.name, f"{rabbitmq.DATA_DIR}/{rabbitmq.nodename(n)}", b"")
    for n in topo.controllers:
        for path in KEY_DIRS:
            s.file(n.name, path, b"")
        if topo.runs("telemetry"):
            s.file(n.name, telemetry.STORAGE_MARKER, b"")
    first = topo.controllers[0].name
    for svc, names in SCHEMA_PACKAGES.items():
        s.file(first, f"{STAMP_DIR}/schema-{svc}", version_stamp(
            {p: packages([p]).parse(Result("", (), 0, f"{p}\tii \t1.0-1\n", ""))[p] for p in names}, names))
    addresses = ",".join(f"{n.address}:3306" for n in topo.controllers)
    synced = (f"wsrep_cluster_status\tPrimary\nwsrep_local_state_comment\tSynced\nwsrep_ready\tON\n"
              f"wsrep_cluster_size\t{topo.galera_votes}\nwsrep_incoming_addresses\t{addresses}\n")
    accounts = "".join(f"{u.name}@{u.host}\n" for u in GaleraStage.accounts())
    s.add(on_prefix("sh", "-c", FILE_STATE_SCRIPT, "sh", times=None, respond=_file_state(s, set(KEY_DIRS))),
          on_prefix("dpkg-query", "-W", times=None, respond=_packages(True)),
          on_prefix("systemctl", "show", times=None, respond=_units(active)),
          on_fact(galera_status(), times=None, stdout=synced),
          on_fact(sql_accounts(), times=None, stdout="root@localhost\n" + accounts),
          on_fact(table_counts(), times=None, stdout="".join(f"{db.name}\t12\n" for db in os_.databases(topo))),
          on_fact(cluster_status(), times=None, stdout=brokers_json(topo)),
          on_fact(stopped_vhosts(), times=None, stdout="[]\n"),
          on_prefix("mariadb", "--batch", "--skip-column-names", times=None, stdout=accounts_rows(topo)),
          on_fact(crm_mon(), times=None, stdout=recorded("crm_mon", "lab-healthy").stdout),
          on_fact(resource_ids(), times=None, stdout="<resources>" + "".join(
              f'<primitive id="{i}"/>' for i in pacemaker.owned_ids(topo) if i != pacemaker.GROUP)
              + "</resources>\n"),
          on_regex(".*", times=None, exit_status=1, stderr="not scripted"))
    return s


def test_a_fresh_fleet_plan_names_the_bootstrap_the_joins_and_every_start(seed: Topology) -> None:
    result = _run(seed, fresh(seed))
    steps = result.steps
    assert not refusals(steps)
    galera = [s for s in steps if s.stage == "galera" and s.kind == "change"]
    assert (galera[0].host, galera[0].text) == ("ctl-1", "bootstrap a new Galera cluster (galera_new_cluster)")
    assert [s.host for s in galera if "start mariadb" in s.text] == ["ctl-2", "ctl-3"]
    rabbit = changes([s for s in steps if s.stage == "rabbitmq"])
    assert [(s.host, "batch 1" in s.text) for s in rabbit if "start rabbitmq-server" in s.text] == [
        ("ctl-1", True), ("ctl-2", False), ("ctl-3", False)]
    # new brokers find the cluster at their first boot (peer discovery): a check, not a join
    assert not [s for s in rabbit if "join" in s.text]
    assert [s.host for s in steps if s.text.startswith("joins rabbit@ctl-1's cluster at its first boot")] == [
        "ctl-2", "ctl-3"]
    assert any(s.stage == "pacemaker" and s.text.startswith("load the configuration") for s in steps)
    assert any(s.text.startswith("gate: ") for s in steps)
    # every unit deploy runs is started by some stage, and only once: for every example below


def test_a_deployed_fleet_with_nothing_to_change_plans_no_change(seed: Topology) -> None:
    result = _run(seed, deployed(seed))
    assert result.errors == {}
    assert [(s.stage, s.host, s.text) for s in changes(result.steps)] == []
    assert not refusals(result.steps)
    assert sum(len(h.changed_files) + len(h.packages) for h in result.hosts.values()) == 0
    # the gates are still listed: deploy checks them
    assert {s.stage for s in result.steps if s.text.startswith("gate: ")} >= {
        "galera", "rabbitmq", "vip", "openstack", "pacemaker"}


def test_one_changed_haproxy_timing_plans_one_file_and_a_rolling_haproxy_reload(seed: Topology) -> None:
    tuned = seed.model_copy(update={"tuning": seed.tuning.model_copy(update={
        "haproxy": seed.tuning.haproxy.model_copy(update={"check_inter_ms": 700})})})
    result = _run(tuned, deployed(seed))
    files = {(h, c.file.path) for h, hp in result.hosts.items() for c in hp.changed_files}
    assert files == {(n.name, "/etc/haproxy/haproxy.cfg") for n in seed.controllers}
    assert [(s.stage, s.host, s.text.split(" (")[0]) for s in changes(result.steps)] == [
        ("vip", n.name, "reload haproxy") for n in seed.controllers]


def test_a_departed_broker_still_running_is_a_refusal_in_the_plan(seed: Topology) -> None:
    from conftest import replace_node

    topo = replace_node(seed, "ctl-2", "ctl-4", "10.77.0.14")
    result = _run(topo, deployed(seed))
    refused = refusals(result.steps)
    # deploy stops at the first (Galera); the plan names every stage that would refuse
    assert [(s.stage, s.host, s.code) for s in refused] == [
        ("galera", "ctl-1", "GALERA-STRANGER"), ("rabbitmq", "ctl-1", "RABBIT-DEPARTED-RUNNING")]
    assert "10.77.0.12" in refused[0].text and "rabbit@ctl-2" in refused[1].text


def test_a_stopped_broker_is_started_and_joins_only_if_its_database_names_another_cluster(seed: Topology) -> None:
    from hastack.facts.rabbitmq import cluster_file

    s = deployed(seed)
    ctl3 = cluster_file(f"{rabbitmq.DATA_DIR}/rabbit@ctl-3")
    s.expects[:0] = [
        on_fact(cluster_status(), host="ctl-3", times=None, exit_status=69, stderr="Error: unable to perform an "
                "operation on node 'rabbit@ctl-3'"),
        on_prefix("systemctl", "show", host="ctl-3", times=None,
                  respond=_units({"ctl-3": {*desired(Ctx(seed, SECRETS))["ctl-3"].units, rabbitmq.PEERS_UNIT}
                                          - {rabbitmq.UNIT}})),
        on_fact(ctl3, host="ctl-3", stdout=recorded("rabbitmq-data", "cluster_nodes-stopped-member").stdout)]
    steps = changes([st for st in _run(seed, s).steps if st.stage == "rabbitmq"])
    assert [(st.host, st.text.split(" (")[0]) for st in steps] == [("ctl-3", "enable and start rabbitmq-server")]
    # its database names another cluster: it joins ctl-1's
    s = deployed(seed)
    s.expects[:0] = [
        on_fact(cluster_status(), host="ctl-3", times=None, exit_status=69),
        on_fact(ctl3, host="ctl-3", stdout="{['rabbit@ctl-3'],['rabbit@ctl-3']}.\n")]
    steps = changes([st for st in _run(seed, s).steps if st.stage == "rabbitmq"])
    assert [(st.host, st.text.split(" (")[0]) for st in steps] == [("ctl-3", "join rabbit@ctl-1's cluster")]


@pytest.mark.parametrize("which", ["deployed", "fresh"])
def test_plan_steps_render_with_a_mark_per_kind(seed: Topology, which: str) -> None:
    result = _run(seed, deployed(seed) if which == "deployed" else fresh(seed))
    marks = {s.render()[0] for s in result.steps}
    assert marks <= {"*", "=", "!"} and "=" in marks
    json.dumps([s.render() for s in result.steps])  # plain text


def test_a_missing_grant_and_a_stale_password_are_planned_as_the_sql_deploy_writes(seed: Topology) -> None:
    from hastack.deploy.stages.openstack_sql import accounts

    a = accounts(seed, SECRETS)
    user, db = a.users[0], next(db for db in a.dbs if db.user == a.users[0])
    rows = accounts_rows(seed).replace(f"user\t{user}\tok\n", f"user\t{user}\tstale\n").replace(
        f"grant\t{db.name}\t{db.user}\n", "")
    s = deployed(seed)
    s.expects[:0] = [on_prefix("mariadb", "--batch", "--skip-column-names", times=None, stdout=rows)]
    assert [(st.stage, st.host, st.text) for st in changes(_run(seed, s).steps)] == [
        ("openstack", "ctl-1", f"set the password of SQL user {user}"),
        ("openstack", "ctl-1", f"grant {db.user} all on {db.name}")]


@pytest.mark.parametrize("example", ["seed.yml", "four-servers.yml", "four-servers-mirrored.yml", "infra.yml"])
def test_every_example_fresh_plan_starts_every_unit_once_and_a_deployed_one_changes_nothing(example: str) -> None:
    """Every unit deploy runs is started by some stage's step, and only once (the bootstrap starts
    the first controller's MariaDB; `member` then only enables it)."""
    from conftest import load_example

    topo = load_example(example)
    fresh_steps = _run(topo, fresh(topo)).steps
    assert not refusals(fresh_steps)
    want = desired(Ctx(topo, SECRETS))
    for n in topo.nodes:
        started = [s.text.replace("bootstrap a new Galera cluster", "start mariadb") for s in changes(fresh_steps)
                   if s.host == n.name and s.text != "enable mariadb"]
        for u in want[n.name].units:
            assert len([t for t in started if re.search(rf"start {re.escape(u)}(?=[ ,]|$)", t)]) == 1, (n.name, u)
    if topo.runs("telemetry"):
        assert [s.host for s in fresh_steps if s.text.startswith("initialise Gnocchi's storage")] == [
            n.name for n in topo.controllers]
    steps = _run(topo, deployed(topo)).steps
    assert [(s.stage, s.host, s.text) for s in changes(steps)] == [] and not refusals(steps)


def test_a_replaced_network_node_still_online_is_forgotten_after_the_corosync_reload_not_refused(
        seed: Topology) -> None:
    from conftest import replace_node

    topo = replace_node(seed, "net-2", "net-3", "10.77.0.23")
    steps = _run(topo, deployed(seed)).steps
    assert not [s for s in refusals(steps) if s.stage in ("corosync", "pacemaker")]
    assert [s.text.split(" (")[0] for s in steps if s.stage == "pacemaker" and s.text.startswith("remove net-2")] == [
        "remove net-2 from Pacemaker"]
    assert any(s.stage == "corosync" and s.text.startswith("reload corosync.conf") for s in steps)


def test_with_only_some_stages_the_plan_lists_only_theirs(seed: Topology) -> None:
    result = asyncio.run(plan(Ctx(seed, SECRETS), dict(fresh(seed).fleet(*[n.name for n in seed.nodes])),
                              ["galera"]))
    assert {s.stage for s in result.steps} == {"galera"}
    assert all(not hp.changed_files and not hp.packages for hp in result.hosts.values())


def test_departed_brokers_are_found_in_the_stopped_brokers_databases(seed: Topology) -> None:
    """After a full outage no broker answers; the run reads the views after starting them. The plan
    reads the cluster each database names, and plans the forget of the broker the topology dropped."""
    from conftest import replace_node
    from hastack.facts.rabbitmq import cluster_file

    topo = replace_node(seed, "ctl-2", "ctl-4", "10.77.0.14")
    s = deployed(seed)
    names = "{['rabbit@ctl-1','rabbit@ctl-2','rabbit@ctl-3'],['rabbit@ctl-1','rabbit@ctl-2','rabbit@ctl-3']}.\n"
    s.expects[:0] = [on_fact(cluster_status(), times=None, exit_status=69),
                     *(on_fact(cluster_file(f"{rabbitmq.DATA_DIR}/rabbit@{h}"), host=h, stdout=names)
                       for h in ("ctl-1", "ctl-3"))]
    steps = [st for st in _run(topo, s).steps if st.stage == "rabbitmq"]
    assert not refusals(steps)
    assert [st.text.split(" (")[0] for st in changes(steps) if "ctl-2" in st.text] == ["forget rabbit@ctl-2"]


def test_the_plan_as_json_names_secrets_but_holds_none(seed: Topology, tmp_path: Path) -> None:
    from hastack.cli.deploy import plan_json
    from hastack.secrets import Secrets

    secrets = Secrets.load(tmp_path / "secrets.yml")  # a fresh store: deploy would generate every secret
    ctx = Ctx(seed, secrets)
    result = asyncio.run(plan(ctx, dict(fresh(seed).fleet(*[n.name for n in seed.nodes]))))
    doc = plan_json(result)
    text = json.dumps(doc)
    assert doc["exit"] == 0 and doc["changes"] > 0 and "galera/sst" in doc["new_secrets"]
    assert {"stage": "galera", "host": "ctl-1", "kind": "change", "text": "bootstrap a new Galera cluster "
            "(galera_new_cluster)", "code": None} in doc["steps"]
    assert all(v not in text for v in secrets.values() if len(v) >= 8)
    assert not (tmp_path / "secrets.yml").exists()


def test_a_host_that_cannot_be_read_is_named_once_and_not_read_again_by_the_stages(seed: Topology) -> None:
    s = deployed(seed).unreachable("ctl-3", "10.77.0.13:22 did not answer within 5s")
    result = _run(seed, s)
    assert set(result.errors) == {"ctl-3"} and "did not answer" in result.errors["ctl-3"]
    assert not [st for st in result.steps if st.host == "ctl-3"]
    assert len([c for c in s.calls if c.host == "ctl-3"]) == 1  # the file read of the plan, nothing after it
    from hastack.cli.deploy import plan_exit

    assert plan_exit(result) == 3
