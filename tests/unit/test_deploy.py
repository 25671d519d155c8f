"""Deploy planning and ordering with the scripted fake transport: which commands, in which
order, on which host; a failure in one stage stops the next."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest

from conftest import FixedSecrets, replace_node, watching
from hastack.components.base import Ctx, File
from hastack.components.registry import desired
from hastack.deploy.engine import Deploy, Event, StageFailed, StepFailed
from hastack.deploy.run import PlanResult
from hastack.deploy.stages.files import FilesStage
from hastack.deploy.stages.galera import GaleraStage
from hastack.deploy.stages.rabbitmq import RabbitMQStage
from hastack.facts import FileState, file_state, galera_status, grastate, packages, render_file_state, units
from hastack.facts.galera import sql_accounts
from hastack.plan.gather import HostPlan
from hastack.topology.model import Node, Topology
from hastack.transport.fake import Expect, Script, on, on_fact, on_prefix, on_regex

SYNCED = "wsrep_cluster_status\tPrimary\nwsrep_local_state_comment\tSynced\nwsrep_ready\tON\nwsrep_cluster_size\t3\n"
ACTIVE = "Id={u}.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n"
INACTIVE = "Id={u}.service\nLoadState=loaded\nActiveState=inactive\nSubState=dead\nUnitFileState=disabled\n"


def make(topo: Topology, script: Script) -> Deploy:
    ctx = Ctx(topo, FixedSecrets(None))
    return Deploy(topo, desired(ctx), dict(script.fleet(*[n.name for n in topo.nodes])), ctx.secrets)


DOWN = "ERROR 2002 (HY000): Can't connect to local server through socket '/run/mysqld/mysqld.sock' (2)"


def status_cmd(host: str, answers: list[str | None], then: str | None) -> list[Expect]:
    """wsrep status reads answering in sequence (None = MariaDB not answering), then `then` forever."""
    def one(a: str | None, times: int | None) -> Expect:
        return on_fact(galera_status(), host=host, stdout=a or "", stderr="" if a else DOWN,
                       exit_status=0 if a else 1, times=times)
    return [*(one(a, 1) for a in answers), one(then, None)]


def unit(host: str, name: str, active: bool, times: int | None = 1) -> Expect:
    text = (ACTIVE if active else INACTIVE).format(u=name)
    return on_fact(units([name]), host=host, stdout=text, times=times)


def old_check_unit(host: str, *, removed: bool = False) -> Expect:
    """The removal of the per-connection check unit of before: 'removed' where it was there."""
    from hastack.deploy.stages import galera as stage

    return on("sh", "-c", stage.REMOVE_OLD_CHECK_UNIT, "hastack", stage.OLD_CHECK_UNIT, host=host,
              stdout="removed\n" if removed else "")


def no_timers(host: str, removed: str = "") -> Expect:
    """The seed schedules no backups: both timers are removed where they are (none here)."""
    from hastack.components import galera
    from hastack.deploy.stages import galera as stage

    return on("sh", "-c", stage.REMOVE_TIMERS, "hastack", *galera.BACKUP_TIMERS.values(), host=host, stdout=removed)


def test_fresh_cluster_bootstraps_first_controller_then_joins_one_at_a_time(seed: Topology) -> None:
    s = Script()
    s.add(*status_cmd("ctl-1", [None], SYNCED), *status_cmd("ctl-2", [None], SYNCED),
          *status_cmd("ctl-3", [None], SYNCED))
    s.add(*(on_fact(grastate(), host=h, exit_status=66) for h in ("ctl-1", "ctl-2", "ctl-3")))
    s.add(on("galera_new_cluster", host="ctl-1"))
    s.add(on_fact(sql_accounts(), host="ctl-1", stdout="root@localhost\n"))
    s.add(on("mariadb", host="ctl-1", times=3))  # CREATE USER x3, SQL on stdin
    s.add(unit("ctl-1", "mariadb", True, None))
    for h in ("ctl-2", "ctl-3"):
        s.add(unit(h, "mariadb", False), on("systemctl", "enable", "--quiet", "mariadb", host=h),
              on("systemctl", "reset-failed", "mariadb", host=h),  # a unit at its start limit refuses start
              on("systemctl", "start", "mariadb", host=h), unit(h, "mariadb", True, None))
    for h in ("ctl-1", "ctl-2", "ctl-3"):
        s.add(unit(h, "hastack-galera-check.socket", True, None), old_check_unit(h, removed=h == "ctl-2"),
              no_timers(h))
    d = make(seed, s)
    events: list[Event] = []
    d.emit = events.append
    asyncio.run(GaleraStage().run(d))
    s.assert_done()
    runs = [(c.host, c.argv[:2]) for c in s.calls if c.kind == "run" and c.argv[0] in ("galera_new_cluster",
                                                                                          "systemctl")
            and (c.argv[0] == "galera_new_cluster" or c.argv[1] == "start")]
    assert runs == [("ctl-1", ("galera_new_cluster",)), ("ctl-2", ("systemctl", "start")),
                    ("ctl-3", ("systemctl", "start"))]
    assert [e.host for e in events if "removed /etc/systemd/system/hastack-galera-check@" in e.message] == ["ctl-2"]
    sql = b"".join(c.stdin or b"" for c in s.calls if c.argv == ("mariadb",))
    assert b"CREATE USER 'sst'@'localhost'" in sql and b"clustercheck" in sql
    # the secrets went on stdin, never in an argv
    for secret in d.secrets.values():
        assert all(secret not in " ".join(c.argv) for c in s.calls)


def test_never_bootstraps_a_stopped_cluster_that_has_data(seed: Topology) -> None:
    s = Script()
    for h in ("ctl-1", "ctl-2", "ctl-3"):
        s.add(*status_cmd(h, [], None))
    s.add(on_fact(grastate(), host="ctl-1", exit_status=66))
    s.add(on_fact(grastate(), host="ctl-2", stdout="# GALERA saved state\nversion: 2.1\n"
                  "uuid:    6f0c8c0e-0000-11ef-8a3e-2a6e3c3f3a01\nseqno:   -1\nsafe_to_bootstrap: 0\n"))
    d = make(seed, s)
    with pytest.raises(StepFailed) as exc:
        asyncio.run(GaleraStage().run(d))
    assert exc.value.code == "GALERA-HAS-DATA" and exc.value.host == "ctl-2"
    assert "hastack recover galera" in exc.value.detail
    assert not any(c.argv and c.argv[0] == "galera_new_cluster" for c in s.calls)


def test_no_bootstrap_when_a_primary_exists(seed: Topology) -> None:
    s = Script()
    s.add(*status_cmd("ctl-1", [], None), *status_cmd("ctl-2", [], SYNCED), *status_cmd("ctl-3", [], SYNCED))
    d = make(seed, s)
    with pytest.raises(StageFailed):  # ctl-1 stays down in this script: its start fails the stage
        s.add(on_fact(sql_accounts(), host="ctl-2", stdout="sst@localhost\nclustercheck@localhost\nhastack_probe@%\n"))
        s.add(unit("ctl-1", "mariadb", False), on("systemctl", "enable", "--quiet", "mariadb", host="ctl-1"),
              on("systemctl", "reset-failed", "mariadb", host="ctl-1"),
              on("systemctl", "start", "mariadb", host="ctl-1", exit_status=1, stderr="WSREP: failed to open gcomm"))
        asyncio.run(GaleraStage().run(d))
    assert not any(c.argv and c.argv[0] == "galera_new_cluster" for c in s.calls)
    assert ("systemctl", "start", "mariadb") not in s.runs("ctl-2")


def test_a_failed_stage_stops_the_next(seed: Topology) -> None:
    s = Script()
    for h in ("ctl-1", "ctl-2", "ctl-3"):
        s.add(*status_cmd(h, [], None))
    s.add(on_fact(grastate(), host="ctl-1", stdout="version: 2.1\nuuid:    6f0c8c0e-0000-11ef-8a3e-2a6e3c3f3a01\n"
                  "seqno:   8\nsafe_to_bootstrap: 1\n"))
    d = make(seed, s)
    with pytest.raises(StageFailed) as exc:
        asyncio.run(d.execute([GaleraStage(), RabbitMQStage()]))
    assert not any("rabbitmqctl" in c.argv for c in s.calls if c.kind == "run")
    [report] = exc.value.reports()
    assert (report.code, report.area, report.subject, report.field("step")) == (
        "GALERA-HAS-DATA", "galera", "ctl-1", "bootstrap Galera")


def test_a_failed_command_is_a_report_with_host_step_command_exit_code_and_output() -> None:
    from hastack.reports import Severity
    from hastack.transport.base import Result

    failed = StepFailed("ctl-2", "start mariadb", "", Result("ctl-2", ("systemctl", "start", "mariadb"), 1, "",
                                                             "Job for mariadb.service failed.\n"))
    r = failed.report("galera")
    assert (r.code, r.severity, r.area, r.subject) == ("DEPLOY-COMMAND-FAILED", Severity.ERROR, "galera", "ctl-2")
    assert dict(r.fields) == {"step": "start mariadb", "command": "systemctl start mariadb", "exit_code": "1",
                              "output": "Job for mariadb.service failed."}
    assert "[DEPLOY-COMMAND-FAILED]" in failed.render().splitlines()[0]


def host_facts(d: Deploy, node: str, states: dict[str, FileState]) -> list[Expect]:
    want = d.desired[node]
    installed = "".join(f"{p}\tii \t1.0\n" for p in want.packages)
    out = [on_fact(file_state([f.path for f in want.files]), host=node,
                   stdout=render_file_state([f.path for f in want.files], states)),
           on_fact(packages(want.packages), host=node, stdout=installed)]
    if want.units:
        out.append(on_fact(units(want.units), host=node,
                           stdout="\n".join(ACTIVE.format(u=u) for u in want.units)))
    return out


def test_files_stage_writes_only_what_differs_and_restarts_readers(seed: Topology) -> None:
    s = Script()
    d = make(seed, s)
    node = "ctl-1"
    files: list[File] = d.desired[node].files
    same, other = files[0], files[1]
    states = {same.path: FileState.of(same.path, same.data, owner=same.owner, group=same.group, mode=same.mode),
              other.path: FileState.of(other.path, b"old", owner=other.owner, group=other.group, mode=other.mode)}
    s.add(*host_facts(d, node, states), on("systemctl", "daemon-reload", host=node),
          on_prefix("sysctl", host=node, times=None),
          on("update-ca-certificates", host=node, times=None))
    asyncio.run(FilesStage().host(d, seed.node(node)))
    written = {c.path for c in s.puts(node)}
    assert written == {f.path for f in files} - {same.path}
    for c in s.puts(node):
        f = next(x for x in files if x.path == c.path)
        assert (c.owner, c.group, c.mode, c.data) == (f.owner, f.group, f.mode, f.data)
    assert set(other.restarts) <= d.restarts[node]


def test_files_stage_changes_nothing_when_everything_matches(seed: Topology) -> None:
    s = Script()
    d = make(seed, s)
    node = "net-1"
    states = {f.path: FileState.of(f.path, f.data, owner=f.owner, group=f.group, mode=f.mode)
              for f in d.desired[node].files}
    s.add(*host_facts(d, node, states))
    asyncio.run(FilesStage().host(d, seed.node(node)))
    assert s.puts() == [] and d.changes == 0


def test_a_second_run_changes_nothing(seed: Topology) -> None:
    """Run the files stage twice against the fake's in-memory file system."""
    s = Script().serve_file_state()
    d = make(seed, s)
    node = "cmp-1"
    want = d.desired[node]
    s.add(on_fact(packages(want.packages), host=node, times=2,
                  stdout="".join(f"{p}\tii \t1.0\n" for p in want.packages)),
          on_fact(units(want.units), host=node, times=2, stdout="\n".join(ACTIVE.format(u=u) for u in want.units)),
          on("systemctl", "daemon-reload", host=node, times=None), on_prefix("sysctl", host=node, times=None),
          on("update-ca-certificates", host=node, times=None))
    asyncio.run(FilesStage().host(d, seed.node(node)))
    first = d.changes
    asyncio.run(FilesStage().host(d, seed.node(node)))
    assert first > 0 and d.changes == first


# -- RabbitMQ: vhosts left stopped on a broker of a new cluster ------------------------------------
def test_the_gate_starts_a_vhost_where_it_is_stopped_then_waits_for_it(seed: Topology) -> None:
    from hastack.facts.rabbitmq import stopped_vhosts

    VHOSTS = stopped_vhosts().argv

    down = '[{"name":"nova","cluster_state":{"rabbit@ctl-1":"running","rabbit@ctl-2":"stopped"}}]'
    up = '[{"name":"nova","cluster_state":{"rabbit@ctl-1":"running","rabbit@ctl-2":"running"}}]'
    s = Script().add(on(*VHOSTS, host="ctl-1", stdout=down),
                     on("rabbitmqctl", "-q", "--node", "rabbit@ctl-2", "restart_vhost", "--vhost", "nova",
                        host="ctl-1"),
                     on(*VHOSTS, host="ctl-1", stdout=up))
    d = make(seed, s)
    asyncio.run(RabbitMQStage().vhosts_everywhere(d, "ctl-1"))
    assert d.changes == 1
    s.assert_done()


def test_the_gate_changes_nothing_when_every_vhost_runs(seed: Topology) -> None:
    from hastack.facts.rabbitmq import stopped_vhosts

    VHOSTS = stopped_vhosts().argv

    up = '[{"name":"nova","cluster_state":{"rabbit@ctl-1":"running","rabbit@ctl-2":"running"}}]'
    s = Script().add(on(*VHOSTS, host="ctl-1", stdout=up))
    d = make(seed, s)
    asyncio.run(RabbitMQStage().vhosts_everywhere(d, "ctl-1"))
    assert d.changes == 0


def test_a_plan_writes_no_secrets_file_and_names_what_deploy_would_generate(seed: Topology, tmp_path: Path) -> None:
    """Issue 15: `hastack plan` "changes nothing", the secrets file included."""
    from hastack.deploy.run import plan
    from hastack.secrets import Secrets

    path = tmp_path / "secrets.yml"

    def planned(secrets: Secrets) -> tuple[int, list[str]]:
        ctx = Ctx(seed, secrets)
        want = desired(ctx)
        s = Script().serve_file_state()
        for node, d in want.items():
            s.add(on_fact(packages(d.packages), host=node, stdout="", times=None),
                  on_fact(units(d.units), host=node, times=None,
                          stdout="\n".join(INACTIVE.format(u=u) for u in d.units)))
        s.add(on_regex(".*", exit_status=1, times=None))  # the stages' reads: nothing runs yet
        result = asyncio.run(plan(ctx, dict(s.fleet(*want))))
        assert result.errors == {}
        assert s.puts() == []  # nothing written on any host
        return sum(len(h.changed_files) for h in result.hosts.values()), result.new_secrets

    changes, new = planned(Secrets.load(path))
    assert changes > 0 and {"corosync/authkey", "db/glance"} <= set(new)
    assert not path.exists()
    kept = Secrets.load(path)
    desired(Ctx(seed, kept))
    kept.save()  # what deploy does
    assert path.exists() and planned(Secrets.load(path))[1] == []


# -- deploy shows its plan and asks --------------------------------------------------------------------
def _console() -> tuple[Any, io.StringIO]:
    from rich.console import Console

    buf = io.StringIO()
    return Console(file=buf, width=200), buf


def _changes() -> PlanResult:
    from hastack.plan.steps import Step

    return PlanResult({"ctl-1": HostPlan("ctl-1", packages=["haproxy"], stopped=["haproxy"])}, {}, [],
                      [Step("vip", "ctl-1", "change", "start haproxy"), Step("vip", "", "check", "gate: the VIP")])


def test_deploy_asks_before_a_plan_with_changes_and_stops_on_no() -> None:
    from hastack.cli.deploy import confirm_deploy

    console, buf = _console()
    asked: list[str] = []
    assert confirm_deploy(_changes(), console, dry_run=False, ask=lambda q: asked.append(q) or "n") == 1
    assert asked and "2 change(s)" in asked[0]
    assert "+ package haproxy" in buf.getvalue() and "nothing was changed" in buf.getvalue()
    assert confirm_deploy(_changes(), _console()[0], dry_run=False, ask=lambda q: "yes") is None


def test_deploy_without_a_terminal_needs_yes_unless_nothing_changes() -> None:
    from hastack.cli.deploy import confirm_deploy

    console, buf = _console()
    assert confirm_deploy(_changes(), console, dry_run=False, ask=None) == 1
    assert "--yes" in buf.getvalue()
    assert confirm_deploy(PlanResult({"ctl-1": HostPlan("ctl-1")}, {}), _console()[0], dry_run=False, ask=None) is None
    # secrets a fresh topology needs are a change too
    assert confirm_deploy(PlanResult({}, {}, ["galera/sst"]), _console()[0], dry_run=False, ask=None) == 1


def test_deploy_dry_run_shows_the_plan_and_stops() -> None:
    from hastack.cli.deploy import confirm_deploy

    console, buf = _console()
    assert confirm_deploy(_changes(), console, dry_run=True, ask=lambda q: "yes") == 0
    assert "dry run: 2 change(s) planned; nothing was changed" in buf.getvalue()
    assert "stage vip: 1 step(s) that change something\n  * ctl-1: start haproxy\n  = gate: the VIP" in buf.getvalue()
    assert confirm_deploy(PlanResult({}, {"ctl-2": "unreachable"}), _console()[0], dry_run=True, ask=None) == 3


def test_deploy_stops_before_asking_when_the_plan_has_a_refusal() -> None:
    from hastack.cli.deploy import confirm_deploy
    from hastack.plan.steps import Step

    refused = _changes()
    refused.steps.append(Step("rabbitmq", "ctl-1", "refuse", "rabbit@ctl-9 still runs"))
    console, buf = _console()
    assert confirm_deploy(refused, console, dry_run=False, ask=lambda q: pytest.fail("asked")) == 1
    assert "! ctl-1: rabbit@ctl-9 still runs" in buf.getvalue() and "nothing was changed" in buf.getvalue()
    assert confirm_deploy(refused, _console()[0], dry_run=True, ask=None) == 1  # scripts see it in the exit code


def test_one_confirmation_for_deploy_recover_and_rotate() -> None:
    from hastack.cli.deploy import agreed

    console, buf = _console()
    assert not agreed(console, None, "rotate? [y/N] ", "rotate (or --dry-run to only show it)")
    assert "not confirmed: run again with --yes to rotate (or --dry-run to only show it)" in buf.getvalue()
    asked: list[str] = []
    console, buf = _console()
    assert not agreed(console, lambda q: asked.append(q) or " no ", "carry out this plan? [y/N] ", "x")
    assert asked == ["carry out this plan? [y/N] "] and "nothing was changed" in buf.getvalue()
    for word in ("y", "Y", " yes\n", "YES"):
        console, buf = _console()
        assert agreed(console, lambda q, w=word: w, "q", "x") and buf.getvalue() == ""
    for word in ("", "yep", "n", "oui"):
        assert not agreed(_console()[0], lambda q, w=word: w, "q", "x")


def test_deploy_yes_and_dry_run_exclude_each_other() -> None:
    from typer.testing import CliRunner

    from hastack.cli.main import app

    res = CliRunner().invoke(app, ["deploy", "examples/seed.yml", "--yes", "--dry-run"])
    assert res.exit_code == 2 and "exclude each other" in res.output


# -- membership: a broker or a Galera member the topology no longer lists ------------------------
def _cluster(members: list[str], running: list[str]) -> str:
    import json

    return json.dumps({"cluster_name": "rabbit@ctl-1", "disk_nodes": members, "ram_nodes": [],
                       "running_nodes": running, "partitions": {}, "alarms": [], "versions": {}})


def test_a_dead_broker_left_out_of_the_topology_is_forgotten_from_the_largest_view(seed: Topology) -> None:
    from hastack.facts import cluster_status

    topo = replace_node(seed, "ctl-2", "ctl-4", "10.77.0.14")
    old = ["rabbit@ctl-1", "rabbit@ctl-2", "rabbit@ctl-3"]
    s = Script().add(
        on_fact(cluster_status(), host="ctl-1", stdout=_cluster(old, ["rabbit@ctl-1", "rabbit@ctl-3"])),
        on_fact(cluster_status(), host="ctl-3", stdout=_cluster(old, ["rabbit@ctl-1", "rabbit@ctl-3"])),
        # the new broker has not joined yet: it knows only itself
        on_fact(cluster_status(), host="ctl-4", stdout=_cluster(["rabbit@ctl-4"], ["rabbit@ctl-4"])),
        on("rabbitmqctl", "-q", "forget_cluster_node", "rabbit@ctl-2", host="ctl-1"))
    d = make(topo, s)
    assert asyncio.run(RabbitMQStage().forget_departed(d)).name == "ctl-1"
    s.assert_done()
    assert d.changes == 1


def test_a_new_first_broker_joins_the_others_never_the_reverse(seed: Topology) -> None:
    """ctl-1 replaced in place by ctl-4: ctl-4 is first in the topology but new; the anchor the others
    would join is the broker that knows the cluster (a reset of ctl-2 and ctl-3 would lose their queues)."""
    from hastack.facts import cluster_status

    topo = replace_node(seed, "ctl-1", "ctl-4", "10.77.0.14")
    assert topo.brokers[0].name == "ctl-4"
    old = ["rabbit@ctl-1", "rabbit@ctl-2", "rabbit@ctl-3"]
    s = Script().add(
        on_fact(cluster_status(), host="ctl-4", stdout=_cluster(["rabbit@ctl-4"], ["rabbit@ctl-4"])),
        *(on_fact(cluster_status(), host=h, stdout=_cluster(old, ["rabbit@ctl-2", "rabbit@ctl-3"]))
          for h in ("ctl-2", "ctl-3")),
        on("rabbitmqctl", "-q", "forget_cluster_node", "rabbit@ctl-1", host="ctl-2"))
    d = make(topo, s)
    anchor = asyncio.run(RabbitMQStage().forget_departed(d))
    assert anchor.name == "ctl-2"
    s.assert_done()


def test_a_running_broker_left_out_of_the_topology_stops_the_stage_and_is_not_forgotten(seed: Topology) -> None:
    from hastack.facts import cluster_status

    topo = replace_node(seed, "ctl-2", "ctl-4", "10.77.0.14")
    old = ["rabbit@ctl-1", "rabbit@ctl-2", "rabbit@ctl-3"]
    s = Script().add(*(on_fact(cluster_status(), host=h, stdout=_cluster(old, old)) for h in ("ctl-1", "ctl-3")),
                     on_fact(cluster_status(), host="ctl-4", stdout=_cluster(["rabbit@ctl-4"], ["rabbit@ctl-4"])))
    d = make(topo, s)
    with pytest.raises(StepFailed) as exc:
        asyncio.run(RabbitMQStage().forget_departed(d))
    assert exc.value.code == "RABBIT-DEPARTED-RUNNING" and "rabbit@ctl-2" in exc.value.detail
    assert d.changes == 0  # nothing forgotten: the scripted transport has no forget_cluster_node


def test_nothing_to_forget_when_the_cluster_is_the_topology(seed: Topology) -> None:
    from hastack.facts import cluster_status

    all3 = ["rabbit@ctl-1", "rabbit@ctl-2", "rabbit@ctl-3"]
    s = Script().add(*(on_fact(cluster_status(), host=h, stdout=_cluster(all3, all3))
                       for h in ("ctl-1", "ctl-2", "ctl-3")))
    d = make(seed, s)
    asyncio.run(RabbitMQStage().forget_departed(d))
    assert d.changes == 0


def _databases(topo: Topology, have: set[str]) -> Script:
    """Each broker's database directory: there on the hosts in `have`."""
    from hastack.components import rabbitmq

    s = Script()
    for n in topo.brokers:
        path = f"{rabbitmq.DATA_DIR}/{rabbitmq.nodename(n)}"
        st = {path: FileState(path, True, "rabbitmq", "rabbitmq", 0o755, "directory")} if n.name in have else {}
        s.add(on_fact(file_state([path]), host=n.name, stdout=render_file_state([path], st)))
    return s


@pytest.mark.parametrize(("have", "batches"), [
    (set(), [["ctl-1"], ["ctl-2", "ctl-3"]]),  # a new cluster: the first forms it, the others join together
    ({"ctl-1", "ctl-3"}, [["ctl-1", "ctl-3"], ["ctl-2"]]),  # a new broker after the members
    ({"ctl-1", "ctl-2", "ctl-3"}, [["ctl-1", "ctl-2", "ctl-3"]]),  # all members: together (they wait for each other)
])
def test_brokers_start_in_batches_a_new_cluster_by_its_first_broker(
        seed: Topology, have: set[str], batches: list[list[str]]) -> None:
    s = _databases(seed, have)
    d = make(seed, s)
    order = asyncio.run(RabbitMQStage().start_order(d))
    assert [[n.name for n in b] for b in order] == batches
    s.assert_done()


def test_a_new_broker_gets_a_replica_of_every_quorum_queue(seed: Topology) -> None:
    from hastack.facts.rabbitmq import grow_queues

    grown = '[{"vhost":"nova","name":"scheduler","size":4,"result":"ok"},' \
            '{"vhost":"nova","name":"conductor","size":3,"result":"{error,timeout}"}]'
    s = Script().add(on_fact(grow_queues("rabbit@ctl-2"), host="ctl-2", stdout=grown))
    d = make(seed, s)
    with pytest.raises(StepFailed) as exc:
        asyncio.run(RabbitMQStage().grow(d, seed.node("ctl-2")))
    assert exc.value.code == "RABBIT-QUEUE-GROW-FAILED" and "nova/conductor: {error,timeout}" in exc.value.detail
    s = Script().add(on_fact(grow_queues("rabbit@ctl-2"), host="ctl-2", stdout="[]\n"))
    d = make(seed, s)
    asyncio.run(RabbitMQStage().grow(d, seed.node("ctl-2")))
    assert d.changes == 0


def test_a_galera_member_left_out_of_the_topology_but_running_stops_deploy(seed: Topology) -> None:
    from hastack.facts import GaleraStatus

    topo = replace_node(seed, "ctl-2", "ctl-4", "10.77.0.14")

    def member(addresses: str) -> GaleraStatus:
        return GaleraStatus(True, {"wsrep_cluster_status": "Primary", "wsrep_local_state_comment": "Synced",
                                   "wsrep_ready": "ON", "wsrep_cluster_size": "3",
                                   "wsrep_incoming_addresses": addresses})

    from hastack.deploy.stages.galera import choose_seed

    alive = member("10.77.0.11:3306,10.77.0.12:3306,10.77.0.13:3306")
    decided = choose_seed(topo, {"ctl-1": alive, "ctl-3": alive}, None)
    assert (decided.seed, decided.code) == ("ctl-1", "GALERA-STRANGER") and decided.refuse
    assert "10.77.0.12" in decided.refuse[1]
    # ctl-2 dead: it has left the view; a joining ctl-4 (no address yet) and garbd leave empty entries
    gone = member("10.77.0.11:3306,,10.77.0.13:3306,AUTO")
    assert choose_seed(topo, {"ctl-1": gone, "ctl-3": gone}, None).refuse is None


def test_the_agents_pacemaker_runs_restart_only_for_the_files_they_read(seed: Topology) -> None:
    from hastack.components import neutron
    from hastack.deploy.stages.pacemaker import agents_to_restart

    assert agents_to_restart(seed, {}) == []
    assert agents_to_restart(seed, {"net-2": {neutron.DHCP}}) == ["neutron-dhcp-agent"]
    # neutron.conf (a transport_url naming a replaced controller): every agent, in start order
    assert agents_to_restart(seed, {"net-1": {neutron.CONF}, "cmp-1": {neutron.L3}}) == [
        "neutron-metadata-agent", "neutron-dhcp-agent", "neutron-l3-agent"]
    assert agents_to_restart(seed, {"cmp-1": {neutron.CONF}}) == []  # not a network node


def test_a_changed_haproxy_is_reloaded_not_restarted(seed: Topology) -> None:
    """A reload keeps the VIP holder's connections (a replaced controller changes every backend list)."""
    from hastack.deploy.stages.vip import VipStage
    from hastack.facts import show_stat
    from hastack.facts.haproxy import servers_state

    stat = "# pxname,svname,qcur,status,weight,act,bck,check_status,lastchg,type,\ngalera,ctl-1,0,UP,1,1,0,L7OK,10,2,\n"
    s = Script().add(unit("ctl-1", "haproxy", True),
                     on("systemctl", "reload", "haproxy", host="ctl-1"),
                     on_fact(show_stat(), host="ctl-1", stdout=stat),
                     on_fact(servers_state(), host="ctl-1", stdout="1\n# be_id be_name srv_id srv_name srv_addr "
                             "srv_op_state srv_admin_state\n3 galera 1 ctl-1 10.77.0.11 2 0\n"))
    d = make(seed, s)
    d.restarts["ctl-1"] = {"haproxy"}
    asyncio.run(VipStage().haproxy(d, seed.node("ctl-1")))
    s.assert_done()  # no restart, and no start after the reload: an unexpected call fails the fake
    assert d.changes == 1


def test_servers_left_in_maintenance_or_drain_are_put_back_in_rotation(seed: Topology) -> None:
    """`hastack retire` (or an operator) left ctl-1's servers out; the node is back in the topology."""
    from recordings import load

    from hastack.deploy.stages.vip import VipStage
    from hastack.facts.haproxy import ADMIN_SCRIPT, ADMIN_SOCKET, servers_state

    recorded = load("haproxy", "servers_state-drained").stdout
    rows = [ln.split() for ln in recorded.splitlines()[2:] if ln.strip()]
    held = [r[1] for r in rows if r[3] == "ctl-1" and r[6] != "0"]
    ready = "; ".join(f"set server {b}/ctl-1 state ready" for b in held)
    s = Script().add(on_fact(servers_state(), host="ctl-2", stdout=recorded),
                     on("python3", "-c", ADMIN_SCRIPT, ADMIN_SOCKET, ready, host="ctl-2"))
    d = make(seed, s)
    asyncio.run(VipStage().in_rotation(d, seed.node("ctl-2")))
    s.assert_done()
    assert d.changes == 1 and "keystone" in held
    s = Script().add(on_fact(servers_state(), host="ctl-2", stdout=recorded.replace(" 8 ", " 0 ")))
    d = make(seed, s)
    asyncio.run(VipStage().in_rotation(d, seed.node("ctl-2")))
    assert d.changes == 0  # nothing held out: nothing sent


# -- the quorum device after its arbitrator was replaced -----------------------------------------
CA_A = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
CA_B = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n"


def _qdevice_script(trusted: str) -> Script:
    from hastack.components import corosync
    from hastack.facts.pacemaker import trusted_qnetd_ca

    s = Script().file("ctl-3", corosync.QNETD_CA, CA_A)
    for m in ("net-1", "net-2"):
        s.add(on(*corosync.HAS_CLUSTER_CERT, host=m),
              on_fact(trusted_qnetd_ca(corosync.QDEVICE_DB), host=m, stdout=trusted))
    return s


def test_members_that_trust_the_qnetd_ca_keep_their_certificates(seed: Topology) -> None:
    from hastack.deploy.stages.pacemaker import PacemakerStage

    s = _qdevice_script(CA_A)
    d = make(seed, s)
    asyncio.run(PacemakerStage().certificates(d, seed.network_nodes))
    s.assert_done()
    assert d.changes == 0


def test_members_that_trust_another_ca_redo_the_exchange(seed: Topology) -> None:
    """The arbitrator was replaced: its new qnetd made its own CA, which the members do not trust."""
    from hastack.components import corosync
    from hastack.deploy.stages.pacemaker import PacemakerStage

    s = _qdevice_script(CA_B)
    steps = corosync.qdevice_tls_steps(seed)
    for st in steps:  # every file a copy step reads is there; every command succeeds
        if isinstance(st, corosync.Copy) and st.src != corosync.QNETD_CA:
            s.file(st.src_host, st.src, b"x")
    s.add(on_regex(r".*", times=None))
    d = make(seed, s)
    asyncio.run(PacemakerStage().certificates(d, seed.network_nodes))
    ran = [" ".join(a) for a in s.runs()]
    assert any(r.startswith("rm -rf " + corosync.QDEVICE_DB) for r in ran)
    assert all("corosync-qdevice" in d.restarts[m] for m in ("net-1", "net-2"))


def test_a_changed_corosync_conf_is_reloaded_once_and_qdevice_restarted(seed: Topology) -> None:
    from hastack.components import corosync
    from hastack.deploy.stages.pacemaker import PacemakerStage
    from hastack.facts.pacemaker import running_nodeid

    s = Script().add(*(on_fact(running_nodeid(), host=h, stdout=f"runtime.votequorum.this_node_id (u32) = {i}\n")
                       for h, i in (("net-1", 21), ("net-2", 22))),
                     on(*corosync.RELOAD, host="net-1"))
    d = make(seed, s)
    d.changed_paths = {"net-1": {corosync.CONF}, "net-2": {corosync.CONF}}
    asyncio.run(PacemakerStage().reload_corosync(d, seed.network_nodes))
    s.assert_done()  # one reload for the cluster, no restart of corosync anywhere
    assert all("corosync-qdevice" in d.restarts[m] for m in ("net-1", "net-2"))
    d = make(seed, Script())
    d.changed_paths = {"net-1": {corosync.CONF}}
    d.started = {"net-1": {"corosync"}}  # started by this run with the new file: nothing to reload
    asyncio.run(PacemakerStage().reload_corosync(d, seed.network_nodes))
    assert d.changes == 0


# -- a network node replaced under Pacemaker -----------------------------------------------------
def _crm(case: str) -> str:
    from recordings import load as recording

    return recording("crm_mon", case).stdout


def test_a_dead_network_node_left_out_of_the_topology_is_removed_from_pacemaker(seed: Topology) -> None:
    """net-1 powered off for good (fenced, offline: recorded), net-3 in its place: Pacemaker forgets it."""
    from hastack.deploy.stages.pacemaker import PacemakerStage
    from hastack.facts.pacemaker import crm_mon

    topo = replace_node(seed, "net-1", "net-3", "10.77.0.23")
    s = Script().add(on_fact(crm_mon(), host="net-2", stdout=_crm("node-fenced")),
                     on("crm_node", "--force", "--remove", "net-1", host="net-2"))
    d = make(topo, s)
    asyncio.run(PacemakerStage().forget_departed(d, "net-2"))
    s.assert_done()
    assert d.changes == 1


def test_a_network_node_left_out_but_online_stops_the_stage_and_stays(seed: Topology) -> None:
    from hastack.deploy.stages.pacemaker import PacemakerStage
    from hastack.facts.pacemaker import crm_mon

    topo = replace_node(seed, "net-1", "net-3", "10.77.0.23")
    s = Script().add(on_fact(crm_mon(), host="net-2", stdout=_crm("lab-healthy")))
    d = make(topo, s)
    with pytest.raises(StepFailed) as exc:
        asyncio.run(PacemakerStage().forget_departed(d, "net-2"))
    assert exc.value.code == "PCMK-DEPARTED-ONLINE" and "net-1" in exc.value.detail
    assert d.changes == 0  # the scripted transport has no crm_node: an attempt would have failed the fake
    # the topology that lists both: nothing to forget
    s = Script().add(on_fact(crm_mon(), host="net-1", stdout=_crm("lab-healthy")))
    d = make(seed, s)
    asyncio.run(PacemakerStage().forget_departed(d, "net-1"))
    assert d.changes == 0


def test_a_cluster_numbered_by_position_is_not_reloaded_with_address_ids(seed: Topology) -> None:
    """Deployed before node ids came from addresses: corosync cannot renumber a running node, so
    deploy stops before the reload and says what to do."""
    from hastack.components import corosync
    from hastack.deploy.stages.pacemaker import PacemakerStage
    from hastack.facts.pacemaker import running_nodeid

    s = Script().add(on_fact(running_nodeid(), host="net-1", stdout="runtime.votequorum.this_node_id (u32) = 1\n"))
    d = make(seed, s)
    d.changed_paths = {"net-1": {corosync.CONF}}
    with pytest.raises(StepFailed) as exc:
        asyncio.run(PacemakerStage().reload_corosync(d, seed.network_nodes))
    assert "runs as nodeid 1" in str(exc.value) and "numbers this node 21" in str(exc.value)
    assert "crm cluster stop" in str(exc.value)


def test_the_running_nodeid_parser() -> None:
    from hastack.facts.pacemaker import parse_running_nodeid

    assert parse_running_nodeid("runtime.votequorum.this_node_id (u32) = 21\n") == 21
    with pytest.raises(ValueError):
        parse_running_nodeid("Can't get key runtime.votequorum.this_node_id. Error CS_ERR_NOT_EXIST\n")


# -- recover rabbitmq: a partition pause_minority left recorded ------------------------------------
def restarted(host: str) -> list[Expect]:
    return [on("systemctl", "restart", "rabbitmq-server", host=host),
            on("rabbitmqctl", "-q", "await_startup", "--timeout", "120", host=host)]


def test_the_minority_of_a_recorded_partition_is_restarted_and_only_it(seed: Topology) -> None:
    """Recorded on the lab: ctl-3 healed from a cut at the moment of net_tick_timeout, nothing paused;
    ctl-1 and ctl-2 cannot reach ctl-3, ctl-3 cannot reach either (views of ctl-1 and ctl-3)."""
    from recordings import load as recording

    from hastack.facts import cluster_status
    from hastack.recover.run import heal_partition, partition_losers

    majority = recording("rabbitmqctl", "cluster_status-partition-majority").stdout
    minority = recording("rabbitmqctl", "cluster_status-partition-minority").stdout
    views = [cluster_status().parse(recording("rabbitmqctl", f"cluster_status-partition-{c}").result())
             for c in ("majority", "minority")]
    brokers = ["rabbit@ctl-1", "rabbit@ctl-2", "rabbit@ctl-3"]
    assert partition_losers(views, brokers) == ["rabbit@ctl-3"]
    assert partition_losers(views[1:], brokers) == []  # one side's word alone names no minority
    s = Script().add(on_fact(cluster_status(), host="ctl-1", stdout=majority),
                     on_fact(cluster_status(), host="ctl-2", stdout=majority),
                     on_fact(cluster_status(), host="ctl-3", stdout=minority),
                     *restarted("ctl-3"))
    d = make(seed, s)
    asyncio.run(heal_partition(d))
    s.assert_done()
    assert d.changes == 1


def test_a_whole_cluster_has_no_partition_to_heal(seed: Topology) -> None:
    from recordings import load as recording

    from hastack.facts import cluster_status
    from hastack.recover.run import heal_partition

    healthy = recording("rabbitmqctl", "lab-healthy").stdout
    s = Script().add(*(on_fact(cluster_status(), host=h, stdout=healthy) for h in ("ctl-1", "ctl-2", "ctl-3")))
    d = make(seed, s)
    asyncio.run(heal_partition(d))
    assert d.changes == 0  # no stop_app anywhere: the scripted transport would have refused it


def test_a_broker_whose_app_stayed_stopped_is_started(seed: Topology) -> None:
    """Seen on the lab after a cut healed at the tick timeout: ctl-3's app stopped and stayed so
    while the others ran without a recorded partition."""
    from recordings import load as recording

    from hastack.facts import cluster_status
    from hastack.recover.run import heal_partition

    healthy = recording("rabbitmqctl", "lab-healthy").stdout
    stopped = recording("rabbitmqctl", "cluster_status-app-stopped").result()
    assert cluster_status().parse(stopped).app_stopped
    s = Script().add(on_fact(cluster_status(), host="ctl-1", stdout=healthy),
                     on_fact(cluster_status(), host="ctl-2", stdout=healthy),
                     on_fact(cluster_status(), host="ctl-3", stdout=stopped.stdout, stderr=stopped.stderr,
                             exit_status=stopped.exit_status),
                     *restarted("ctl-3"))
    d = make(seed, s)
    asyncio.run(heal_partition(d))
    s.assert_done()
    assert d.changes == 1


def test_the_network_cluster_starts_before_openstack_and_is_configured_after(
        seed: Topology, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pacemaker's first DC election (dc-deadtime, 20 s) runs beside the OpenStack stage; the
    pacemaker stage forms the cluster itself only when the corosync stage did not run (--stage)."""
    from hastack.deploy.engine import StageTiming
    from hastack.deploy.run import STAGE_NAMES
    from hastack.deploy.stages.pacemaker import PacemakerStage

    assert STAGE_NAMES.index("vip") < STAGE_NAMES.index("corosync") < STAGE_NAMES.index("openstack") \
        < STAGE_NAMES.index("pacemaker")
    formed: list[str] = []

    async def form(self: PacemakerStage, d: Deploy) -> None:
        formed.append("form")

    async def stop(*a: Any, **k: Any) -> None:
        raise RuntimeError("the rest of the stage")

    monkeypatch.setattr(PacemakerStage, "form", form)
    monkeypatch.setattr(PacemakerStage, "wait_dc", stop)
    for ran, forms in (([], 1), ([StageTiming("corosync", 1.0, 0)], 0)):
        formed.clear()
        d = make(seed, Script())
        d.timings.extend(ran)
        with pytest.raises(RuntimeError):
            asyncio.run(PacemakerStage().run(d))
        assert len(formed) == forms


def test_the_dead_peer_watch_is_started_where_it_is_on(seed: Topology, monkeypatch: pytest.MonkeyPatch) -> None:
    """On by default, on every node of the seed: the brokers and every host of their clients."""
    from hastack.components import rabbitmq

    seen: list[str] = []

    async def record(self: RabbitMQStage, d: object, node: Node) -> None:
        seen.append(node.name)

    with monkeypatch.context() as m:
        m.setattr(RabbitMQStage, "peer_watch", record)
        asyncio.run(RabbitMQStage().watches(make(seed, Script())))
    assert sorted(seen) == sorted(n.name for n in seed.nodes)
    s = Script().add(unit("ctl-1", rabbitmq.PEERS_UNIT, active=False),
                     on("systemctl", "enable", "--quiet", rabbitmq.PEERS_UNIT, host="ctl-1"),
                     on_prefix("systemctl", "reset-failed", host="ctl-1"),
                     on("systemctl", "start", rabbitmq.PEERS_UNIT, host="ctl-1"))
    d = make(seed, s)
    asyncio.run(RabbitMQStage().peer_watch(d, seed.node("ctl-1")))
    assert d.changes == 2  # enabled, started
    s.assert_done()


def test_the_dead_peer_watch_is_stopped_and_disabled_where_the_tuning_turned_it_off(seed: Topology) -> None:
    from hastack.components import rabbitmq

    off = watching(seed, 0)
    s = Script().add(unit("ctl-1", rabbitmq.PEERS_UNIT, active=True),
                     on("systemctl", "disable", "--now", "--quiet", rabbitmq.PEERS_UNIT, host="ctl-1"),
                     unit("ctl-2", rabbitmq.PEERS_UNIT, active=False))
    d = make(off, s)
    asyncio.run(RabbitMQStage().peer_watch(d, off.node("ctl-1")))
    asyncio.run(RabbitMQStage().peer_watch(d, off.node("ctl-2")))  # already stopped and disabled: nothing
    assert d.changes == 1
    s.assert_done()
