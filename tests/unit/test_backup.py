"""`hastack backup` and `hastack restore` with the scripted transport: which node backs up, what the
listing reads (a recorded real `db-backup list`), and the restore's order of steps on which host."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from recordings import load
from test_deploy import SYNCED, make, status_cmd

from hastack.components import galera
from hastack.deploy import backup
from hastack.deploy.engine import StepFailed
from hastack.facts import GaleraStatus, galera_status, grastate, show_stat
from hastack.facts.backups import Backup, backup_list, parse_list
from hastack.facts.galera import sql_accounts
from hastack.topology.model import Topology
from hastack.transport.fake import Script, on, on_fact, on_prefix


def listing(case: str) -> list[Backup]:
    rec = load("db-backup", case)
    assert tuple(rec.argv) == backup_list("ctl-2", galera.BACKUP_PROGRAM, galera.BACKUP_ROOT).argv
    return parse_list("ctl-2", rec.stdout)


def test_the_listing_of_a_full_and_its_incremental() -> None:
    full, incr = listing("list-two")
    assert (full.kind, full.base, incr.kind, incr.base, incr.full) == ("full", None, "incr", full.name, full.name)
    assert full.position.split(":")[0] == incr.position.split(":")[0]
    assert int(incr.position.split(":")[1]) > int(full.position.split(":")[1])
    assert full.bytes > incr.bytes > 0 and full.version.startswith("mariadb-backup based on MariaDB server 10.11")
    assert [b.name for b in listing("list-pruned")] != [full.name, incr.name]


@pytest.mark.parametrize("text", ["", "[]", '{"backups": {}}', '{"backups": [{"name": "x"}]}', "not json"])
def test_a_listing_that_makes_no_sense_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_list("ctl-1", text)


def st(state: str) -> GaleraStatus:
    return GaleraStatus(True, {"wsrep_cluster_status": "Primary", "wsrep_local_state_comment": state,
                               "wsrep_ready": "ON"})


ORDER = ["ctl-1", "ctl-2", "ctl-3"]


def test_the_backup_is_taken_on_a_synced_node_that_is_not_the_writer() -> None:
    synced = {n: st("Synced") for n in ORDER}
    assert backup.choose_donor(ORDER, synced, "ctl-1", None)[0] == "ctl-3"
    assert backup.choose_donor(ORDER, synced, "ctl-3", None)[0] == "ctl-2"
    assert backup.choose_donor(ORDER, {**synced, "ctl-3": st("Joining")}, "ctl-1", None)[0] == "ctl-2"
    node, why = backup.choose_donor(ORDER, {"ctl-1": st("Synced")}, "ctl-1", None)
    assert node == "ctl-1" and "writer" in why
    assert backup.choose_donor(ORDER, synced, "ctl-1", "ctl-1") == ("ctl-1", "asked for")
    with pytest.raises(ValueError, match="not Synced"):
        backup.choose_donor(ORDER, {**synced, "ctl-2": st("Donor/Desynced")}, "ctl-1", "ctl-2")
    with pytest.raises(ValueError, match="no controller is Synced"):
        backup.choose_donor(ORDER, {n: GaleraStatus(False, error="down") for n in ORDER}, None, None)


HAPROXY_STAT = "\n".join([
    "# pxname,svname,qcur,status,weight,act,bck,check_status,lastchg,type,",
    "galera,ctl-1,0,UP,1,1,0,L7OK,10,2,", "galera,ctl-2,0,UP,1,0,1,L7OK,10,2,",
    "galera,ctl-3,0,UP,1,0,1,L7OK,10,2,", "galera,BACKEND,0,UP,1,1,2,,10,1,", ""])


def test_take_runs_db_backup_on_the_chosen_node_and_reads_what_it_took(seed: Topology) -> None:
    taken = json.loads(load("db-backup", "list-two").stdout)["backups"][1] | {"pruned": []}
    s = Script()
    s.add(*status_cmd("ctl-1", [], SYNCED), *status_cmd("ctl-2", [], SYNCED), *status_cmd("ctl-3", [], SYNCED))
    s.add(on_fact(show_stat(), host="ctl-1", stdout=HAPROXY_STAT))
    s.add(on(galera.BACKUP_PROGRAM, "backup", galera.BACKUP_ROOT, "incr", "2", host="ctl-3",
             stdout=json.dumps(taken)))
    d = make(seed, s)
    b, pruned, why = asyncio.run(backup.take(d, incremental=True, keep=2, node=None))
    assert (b.host, b.kind, pruned) == ("ctl-3", "incr", []) and "ctl-1" in why
    s.assert_done()


def test_a_failed_backup_names_host_step_and_output(seed: Topology) -> None:
    s = Script()
    s.add(*status_cmd("ctl-1", [], SYNCED), *status_cmd("ctl-2", [], SYNCED), *status_cmd("ctl-3", [], SYNCED))
    s.add(on_fact(show_stat(), host="ctl-1", stdout=HAPROXY_STAT))
    s.add(on_prefix(galera.BACKUP_PROGRAM, "backup", host="ctl-3", exit_status=1,
                    stderr="db-backup: no full backup to base an incremental on: take a full one first\n"))
    with pytest.raises(StepFailed) as exc:
        asyncio.run(backup.take(make(seed, s), incremental=True, keep=2, node=None))
    assert exc.value.code == "DEPLOY-COMMAND-FAILED" and exc.value.host == "ctl-3"
    assert exc.value.result is not None and "no full backup" in exc.value.result.tail(15)


def test_find_and_chain() -> None:
    found = [*listing("list-two"), *(Backup(**{**b.__dict__, "host": "ctl-3"}) for b in listing("list-pruned"))]
    full, incr = found[0], found[1]
    assert backup.chain_of(found, incr) == [full, incr]
    assert backup.find(found, incr.name, None) == incr
    with pytest.raises(ValueError, match="backups"):
        backup.find(found, "20990101T000000Z-full", None)
    twice = [*found, Backup(**{**full.__dict__, "host": "ctl-1"})]
    with pytest.raises(ValueError, match="--node"):
        backup.find(twice, full.name, None)
    assert backup.find(twice, full.name, "ctl-1").host == "ctl-1"
    with pytest.raises(ValueError, match="no longer holds"):
        backup.chain_of([incr], incr)


def test_restore_order_on_every_host(seed: Topology) -> None:
    """Prepare where the backup is, stop everything, install and bootstrap there, accounts, then the
    others one by one (emptied, started, Synced), then the gate; nothing after a refusal."""
    full, incr = listing("list-two")
    s = Script()
    s.add(on(galera.BACKUP_PROGRAM, "prepare", galera.BACKUP_ROOT, incr.name, backup.STAGING, host="ctl-2",
             stdout=json.dumps({"position": incr.position})))
    s.add(*(on("systemctl", "stop", "mariadb", host=h) for h in ORDER))
    s.add(on(galera.BACKUP_PROGRAM, "install", backup.STAGING, backup.DATADIR, host="ctl-2",
             stdout=json.dumps({"position": incr.position, "moved_aside": "/var/lib/mysql.pre-restore-x"})))
    s.add(on("galera_new_cluster", host="ctl-2"))
    s.add(*status_cmd("ctl-2", [], SYNCED))
    s.add(on_fact(sql_accounts(), host="ctl-2", stdout="root@localhost\nsst@localhost\nclustercheck@localhost\n"
                  "hastack_probe@%\n"))
    s.add(on_prefix("mariadb", "--batch", host="ctl-2", times=None))
    s.add(on("mariadb", host="ctl-2", times=None))
    for h in ("ctl-1", "ctl-3"):
        s.add(on(galera.BACKUP_PROGRAM, "empty", backup.DATADIR, host=h, stdout='{"moved_aside": ""}'))
        s.add(on("systemctl", "start", "mariadb", host=h), *status_cmd(h, [], SYNCED))
    s.add(on_prefix("systemctl", "show", times=None, stdout="ActiveState=active\n"))
    s.add(on_fact(grastate(), times=None, exit_status=66), on_fact(galera_status(), times=None, stdout=SYNCED))
    d = make(seed, s)
    shown: list[str] = []
    done = asyncio.run(backup.restore(d, incr, [full, incr], dry_run=False, confirm=lambda lines: True,
                                      show=shown.extend))
    assert done and shown[0].startswith(f"restore {incr.name}")
    assert "  6. wait for every node Synced" in shown, shown  # the seed has no garbd to start
    order = [(c.host, c.argv[:2]) for c in s.calls if c.kind == "run" and (
        c.argv[0] in (galera.BACKUP_PROGRAM, "galera_new_cluster") or c.argv[:3] in (
            ("systemctl", "stop", "mariadb"), ("systemctl", "start", "mariadb")))]
    assert order == [("ctl-2", (galera.BACKUP_PROGRAM, "prepare")), ("ctl-1", ("systemctl", "stop")),
                     ("ctl-2", ("systemctl", "stop")), ("ctl-3", ("systemctl", "stop")),
                     ("ctl-2", (galera.BACKUP_PROGRAM, "install")), ("ctl-2", ("galera_new_cluster",)),
                     ("ctl-1", (galera.BACKUP_PROGRAM, "empty")), ("ctl-1", ("systemctl", "start")),
                     ("ctl-3", (galera.BACKUP_PROGRAM, "empty")), ("ctl-3", ("systemctl", "start"))]
    # not confirmed, or a dry run: the plan is shown and nothing runs
    s2 = Script()
    assert not asyncio.run(backup.restore(make(seed, s2), incr, [full, incr], dry_run=False,
                                          confirm=lambda lines: False, show=lambda lines: None))
    assert not asyncio.run(backup.restore(make(seed, s2), incr, [full, incr], dry_run=True,
                                          confirm=lambda lines: True, show=lambda lines: None))
    assert s2.calls == []


def test_the_secrets_of_the_moment_are_kept_private(tmp_path: Path) -> None:
    src = tmp_path / "secrets.yml"
    src.write_text("db/keystone: x\n")
    kept = backup.keep_secrets(src, tmp_path / "state", "20261205T205235Z-full")
    assert kept is not None and kept.read_text() == "db/keystone: x\n"
    assert kept.stat().st_mode & 0o777 == 0o600 and kept.parent.stat().st_mode & 0o777 == 0o700
    assert backup.keep_secrets(tmp_path / "none.yml", tmp_path / "state", "x") is None


def test_output_that_is_not_db_backups_json_fails_the_step(seed: Topology) -> None:
    s = Script()
    s.add(*status_cmd("ctl-1", [], SYNCED), *status_cmd("ctl-2", [], SYNCED), *status_cmd("ctl-3", [], SYNCED))
    s.add(on_fact(show_stat(), host="ctl-1", stdout=HAPROXY_STAT))
    s.add(on_prefix(galera.BACKUP_PROGRAM, "backup", host="ctl-3", stdout="Segmentation fault\n"))
    with pytest.raises(StepFailed) as exc:
        asyncio.run(backup.take(make(seed, s), incremental=False, keep=2, node=None))
    assert exc.value.code == "DEPLOY-READ-FAILED" and exc.value.host == "ctl-3"
    assert "not the JSON db-backup prints" in exc.value.detail


def test_the_listing_keeps_every_name_whole_on_a_narrow_terminal() -> None:
    """`restore` takes a name from this table: cut with an ellipsis (as it was at 80 columns) it is
    useless. Rendered at 80 and 60 columns, both names of the recorded chain are there whole."""
    from rich.console import Console

    from hastack.cli.deploy import backups_table

    found = listing("list-two")
    for width in (80, 60):
        con = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
        con.print(backups_table(found))
        text = con.export_text()
        assert all(b.name in text for b in found), text


# -- scheduled backups: the timers, and the one node that takes each backup -------------------------
ADDRS = ["10.77.0.11", "10.77.0.12", "10.77.0.13"]


def wsrep_status(members: list[str], state: str = "Synced", cluster: str = "Primary") -> dict[str, str]:
    return {"wsrep_cluster_status": cluster, "wsrep_local_state_comment": state,
            "wsrep_incoming_addresses": ",".join(f"{a}:3306" for a in members)}


@pytest.mark.parametrize(("me", "members", "takes"), [
    ("10.77.0.13", ADDRS, True),  # the last controller of the order, all up
    ("10.77.0.12", ADDRS, False),  # ctl-3 is later and a member: it takes it
    ("10.77.0.11", ADDRS, False),
    ("10.77.0.12", ADDRS[:2], True),  # ctl-3 is gone: the next one back
    ("10.77.0.11", ADDRS[:1], True),  # alone: the writer itself, as `hastack backup` would
])
def test_the_last_member_in_the_topology_order_takes_the_scheduled_backup(
        me: str, members: list[str], takes: bool) -> None:
    from hastack.agents.db_backup import turn

    why = turn(me, ADDRS, wsrep_status(members))
    assert (why is None) == takes, why
    if not takes:
        assert "10.77.0.13" in str(why) or "10.77.0.12" in str(why)


def test_a_node_out_of_the_primary_component_or_not_synced_never_takes_it() -> None:
    from hastack.agents.db_backup import turn

    assert "not Synced" in str(turn("10.77.0.13", ADDRS, wsrep_status(ADDRS, state="Donor/Desynced")))
    assert "non-Primary" in str(turn("10.77.0.13", ADDRS, wsrep_status(["10.77.0.13"], cluster="non-Primary")))
    with pytest.raises(ValueError):
        turn("10.77.0.99", ADDRS, wsrep_status(ADDRS))


def test_a_scheduled_incremental_with_no_full_on_the_node_is_a_full(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from hastack.agents import db_backup

    taken: list[str] = []
    monkeypatch.setattr(db_backup, "run", lambda argv: "wsrep_cluster_status\tPrimary\n"
                        "wsrep_local_state_comment\tSynced\nwsrep_incoming_addresses\t10.77.0.13:3306\n")
    monkeypatch.setattr(db_backup, "backup", lambda root, kind, keep: taken.append(kind) or {"kind": kind})
    out = db_backup.scheduled(tmp_path, "incr", 2, "10.77.0.13", ADDRS)
    assert taken == ["full"] and "no full backup" in str(out["note"])
    out = db_backup.scheduled(tmp_path, "incr", 2, "10.77.0.12", ADDRS[:2] + ["10.77.0.13"])
    assert taken == ["full"] and "skipped" in out  # 10.77.0.13 is a member and later: not this node
    assert db_backup.main(["scheduled", str(tmp_path), "incr", "2", "10.77.0.13;reboot", *ADDRS]) == 2


def test_the_schedule_renders_a_timer_per_kind_and_none_without_it(seed: Topology) -> None:
    from conftest import FixedSecrets
    from hastack.components.base import Ctx
    from hastack.topology.model import Backups

    def rendered(topo: Topology) -> dict[str, str]:
        return {f.path: f.data.decode() for f in galera.COMPONENT.files(Ctx(topo, FixedSecrets(None)),
                                                                          topo.controllers[0])}

    plain = rendered(seed)
    assert not [p for p in plain if p.endswith(".timer")]
    service = plain[f"/etc/systemd/system/{galera.BACKUP_SERVICE}"]
    assert f"scheduled {galera.BACKUP_ROOT} %i 2 10.77.0.11 10.77.0.11 10.77.0.12 10.77.0.13" in service
    topo = seed.model_copy(update={"backups": Backups(full="Sun *-*-* 02:00:00", incremental="*-*-* 00/6:30",
                                                      keep=4)})
    files = rendered(topo)
    full = files["/etc/systemd/system/hastack-db-backup-full.timer"]
    assert "OnCalendar=Sun *-*-* 02:00:00" in full and "Unit=hastack-db-backup@full.service" in full
    assert "OnCalendar=*-*-* 00/6:30" in files["/etc/systemd/system/hastack-db-backup-incr.timer"]
    assert " %i 4 " in files[f"/etc/systemd/system/{galera.BACKUP_SERVICE}"]
    assert galera.backup_keep(topo) == 4 and galera.backup_keep(seed) == galera.BACKUP_KEEP


@pytest.mark.parametrize("calendar", ["daily\nExecStartPre=/bin/sh", "*-*-* 02:00 %n", "daily; reboot", "",
                                      "x" * 65])
def test_a_schedule_that_is_not_a_calendar_is_refused_at_its_line(calendar: str) -> None:
    from test_topology import BASE

    from hastack.topology.load import load_text

    text = BASE + f"backups: {{full: {json.dumps(calendar)}}}\n"
    reports = load_text(text, "t.yml").reports
    bad = [r for r in reports if r.severity.name == "ERROR"]
    assert bad and all(r.path[:1] == ("backups",) and r.location.line == 9 for r in bad), reports


def test_timers_deployed_with_the_schedule_and_removed_without_it(seed: Topology) -> None:
    from test_deploy import unit

    from hastack.deploy.stages.galera import REMOVE_TIMERS, GaleraStage
    from hastack.topology.model import Backups

    topo = seed.model_copy(update={"backups": Backups(full="daily")})
    s = Script().add(unit("ctl-1", "hastack-db-backup-full.timer", False),
                     on("systemctl", "enable", "--quiet", "hastack-db-backup-full.timer", host="ctl-1"),
                     on("systemctl", "reset-failed", "hastack-db-backup-full.timer", host="ctl-1"),
                     on("systemctl", "start", "hastack-db-backup-full.timer", host="ctl-1"),
                     on("sh", "-c", REMOVE_TIMERS, "hastack", "hastack-db-backup-incr.timer", host="ctl-1",
                        stdout="hastack-db-backup-incr.timer\n"))
    d = make(topo, s)
    asyncio.run(GaleraStage().backup_schedule(d, topo.node("ctl-1")))
    s.assert_done()
    assert d.changes == 3  # enabled, started, the incremental timer removed
