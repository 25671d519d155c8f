"""Service logins and their rotation (`components/logins.py`, `deploy/stages/logins.py`,
`hastack rotate-secrets`): the renders during and after a rotation, the retire stage against a
scripted transport (a login still in use stops it with nothing removed), and the Keystone side of
the admin tool against a fake Keystone."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from conftest import FixedSecrets
from hastack.agents import openstack_admin
from hastack.components import logins, rabbitmq
from hastack.components import openstack as os_
from hastack.components.base import Ctx
from hastack.components.registry import desired
from hastack.deploy.engine import Deploy, StepFailed
from hastack.deploy.services import TOOL
from hastack.deploy.stages.logins import LoginsStage, from_departed, principals, under_way
from hastack.deploy.stages.rabbitmq import RabbitMQStage
from hastack.facts.galera import sql_rows
from hastack.facts.rabbitmq import connections, parse_connections, users
from hastack.secrets import Secrets
from hastack.topology.model import Topology
from hastack.transport.fake import Script, on, on_fact


def rotating(seed: Topology, secrets: Secrets | None = None) -> Ctx:
    ctx = Ctx(seed, secrets or FixedSecrets(None))
    for p in principals(seed, ["nova"]):
        assert logins.begin(ctx.secrets, p.kind, p.base)
    return ctx


def test_a_service_has_a_login_of_each_kind(seed: Topology) -> None:
    assert [str(p) for p in principals(seed, ["nova"])] == ["db/nova", "rabbit/nova", "keystone/nova"]
    every = [str(p) for p in principals(seed)]
    assert len(every) == len(set(every))
    assert "db/keystone" in every and "rabbit/placement" not in every  # placement has no messaging


def test_a_rotation_alternates_the_name_and_makes_a_new_password(seed: Topology) -> None:
    s = FixedSecrets(None)
    before = logins.login(s, "db", "nova")
    assert before.user == "nova"
    assert logins.begin(s, "db", "nova")
    after = logins.login(s, "db", "nova")
    assert after.user == "nova_b" and after.password != before.password and len(after.password) == 32
    assert logins.previous(s, "db", "nova") == before
    assert not logins.begin(s, "db", "nova"), "a rotation under way is not started again"
    logins.finish(s, "db", "nova")
    assert logins.previous(s, "db", "nova") is None
    assert logins.begin(s, "db", "nova")
    assert logins.login(s, "db", "nova").user == "nova", "the next rotation goes back to the base name"


def test_renders_use_the_new_login_and_the_brokers_keep_both_until_the_end(seed: Topology) -> None:
    ctx = rotating(seed)
    new = {k: logins.login(ctx.secrets, k, "nova") for k in logins.KINDS}
    old = {k: logins.previous(ctx.secrets, k, "nova") for k in logins.KINDS}
    url = urlsplit(os_.db_url(ctx, "nova", "nova"))
    assert (url.username, url.password) == (new["db"].user, new["db"].password)
    broker = urlsplit(rabbitmq.transport_url(ctx, "nova").split(",")[0])
    assert (broker.username, broker.password) == (new["rabbit"].user, new["rabbit"].password)
    auth = os_.password_auth(ctx, "nova")
    assert (auth["username"], auth["password"]) == (new["keystone"].user, new["keystone"].password)
    defs = rabbitmq.definitions(ctx)
    users_ = {u["name"]: u["password_hash"] for u in defs["users"]}
    for lg in (new["rabbit"], old["rabbit"]):
        assert lg is not None and users_[lg.user] == rabbitmq.password_hash(lg.user, lg.password)
        assert {"user": lg.user, "vhost": "nova", "configure": ".*", "write": ".*", "read": ".*"} in defs["permissions"]
    rendered = {f.path: f.data for f in desired(ctx)["ctl-1"].files}
    nova_conf = rendered["/etc/nova/nova.conf"].decode()
    assert all(lg is not None and lg.password not in nova_conf for lg in old.values())
    for p, _ in under_way(ctx):
        logins.finish(ctx.secrets, p.kind, p.base)
    assert [u["name"] for u in rabbitmq.definitions(ctx)["users"]].count("nova_b") == 1
    assert "nova" not in [u["name"] for u in rabbitmq.definitions(ctx)["users"]]


def test_the_secrets_file_keeps_a_rotation_and_forgets_it_when_finished(seed: Topology, tmp_path: Path) -> None:
    path = tmp_path / "secrets.yml"
    s = Secrets(path)
    first = logins.login(s, "rabbit", "nova")
    s.save()
    s = Secrets.load(path)
    assert logins.begin(s, "rabbit", "nova")
    s.save()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    s = Secrets.load(path)
    assert logins.previous(s, "rabbit", "nova") == first and logins.login(s, "rabbit", "nova").user == "nova_b"
    logins.finish(s, "rabbit", "nova")
    s.save()
    s = Secrets.load(path)
    assert logins.previous(s, "rabbit", "nova") is None
    assert first.password not in path.read_text()


def make(ctx: Ctx, script: Script) -> Deploy:
    return Deploy(ctx.topo, desired(ctx), dict(script.fleet(*[n.name for n in ctx.topo.nodes])), ctx.secrets)


PROCESSLIST = ("SELECT ID, USER, HOST FROM information_schema.PROCESSLIST WHERE USER IN ('nova')")
NOVA_CONNS = json.dumps([{"user": "nova_b", "peer_host": "10.77.0.11"}, {"user": "cinder", "peer_host": "10.77.0.12"}])


def test_the_retire_stage_removes_the_previous_logins_and_forgets_them(seed: Topology) -> None:
    ctx = rotating(seed)
    s = Script().add(
        *(on_fact(sql_rows(PROCESSLIST), host=h, stdout="") for h in ("ctl-1", "ctl-2", "ctl-3")),
        on("mariadb", host="ctl-1"),
        on_fact(connections(), host="ctl-1", stdout=NOVA_CONNS),
        on_fact(users(), host="ctl-1", stdout=json.dumps([{"user": "nova"}, {"user": "nova_b"}])),
        on("rabbitmqctl", "-q", "delete_user", "nova", host="ctl-1"),
        on("python3", TOOL, "retire", host="ctl-1", stdout='{"removed": ["nova"]}\n'),
    )
    d = make(ctx, s)
    asyncio.run(LoginsStage().run(d))
    s.assert_done()
    drop = next(c.stdin for c in s.calls if c.argv == ("mariadb",))
    assert drop == b"DROP USER IF EXISTS 'nova'@'%';\n"
    spec = json.loads(next(c.stdin for c in s.calls if c.argv[-1:] == ("retire",)) or b"")
    assert spec["users"] == [{"name": "nova", "domain": "Default"}]
    assert under_way(ctx) == [] and d.changes >= 3
    defs = {c.host: json.loads(c.data or b"") for c in s.puts() if c.path == rabbitmq.DEFINITIONS}
    assert sorted(defs) == ["ctl-1", "ctl-2", "ctl-3"]
    assert "nova" not in [u["name"] for u in defs["ctl-1"]["users"]]
    assert not LoginsStage().applies(make(ctx, Script()))


def test_a_session_that_ends_while_the_stage_waits_lets_the_rotation_finish(
        seed: Topology, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead client's session behind a live HAProxy ends when its keepalive probes give up."""
    from hastack.deploy.stages import logins as stage

    monkeypatch.setattr(stage, "SESSIONS_POLL_S", 0.01)
    ctx = rotating(seed)
    s = Script().add(
        on_fact(sql_rows(PROCESSLIST), host="ctl-1", stdout="41\tnova\t10.77.0.13:52924\n"),  # the first read
        *(on_fact(sql_rows(PROCESSLIST), host=h, stdout="", times=None) for h in ("ctl-1", "ctl-2", "ctl-3")),
        on("mariadb", host="ctl-1"),
    )
    d = make(ctx, s)
    asyncio.run(LoginsStage().retire_sql(d, ["nova"]))
    s.assert_done()
    assert [c.stdin for c in s.calls if c.argv == ("mariadb",)] == [b"DROP USER IF EXISTS 'nova'@'%';\n"]


def test_a_previous_login_still_in_use_stops_the_stage_with_nothing_removed(
        seed: Topology, monkeypatch: pytest.MonkeyPatch) -> None:
    from hastack.deploy.stages import logins as stage

    monkeypatch.setattr(stage, "SESSIONS_WAIT_S", 0.3)  # waited for, bounded; then the stop
    monkeypatch.setattr(stage, "SESSIONS_POLL_S", 0.05)
    ctx = rotating(seed)
    s = Script().add(
        on_fact(sql_rows(PROCESSLIST), host="ctl-1", stdout="", times=None),
        on_fact(sql_rows(PROCESSLIST), host="ctl-2", stdout="17\tnova\t10.77.0.12:41822\n", times=None),
        on_fact(sql_rows(PROCESSLIST), host="ctl-3", stdout="", times=None),
    )
    d = make(ctx, s)
    with pytest.raises(StepFailed) as exc:
        asyncio.run(LoginsStage().run(d))
    assert exc.value.code == "LOGIN-STILL-IN-USE" and exc.value.host == "ctl-2"
    assert "nova from 10.77.0.12:41822" in exc.value.detail
    assert "run `hastack deploy` again" in str(exc.value)
    assert not any(c.argv in (("mariadb",),) for c in s.calls) and not s.puts()
    assert len(under_way(ctx)) == 3, "the rotation stays on record"

    s = Script().add(
        *(on_fact(sql_rows(PROCESSLIST), host=h, stdout="") for h in ("ctl-1", "ctl-2", "ctl-3")),
        on("mariadb", host="ctl-1"),
        on_fact(connections(), host="ctl-1",
                stdout=json.dumps([{"user": "nova", "peer_host": "10.77.0.31"}])),
    )
    with pytest.raises(StepFailed) as exc:
        asyncio.run(LoginsStage().run(make(ctx, s)))
    assert exc.value.code == "LOGIN-STILL-IN-USE" and "nova from 10.77.0.31" in exc.value.detail
    assert not any(c.argv[:3] == ("rabbitmqctl", "-q", "delete_user") for c in s.calls)


def test_sessions_of_a_host_that_left_are_ended_not_waited_for(seed: Topology) -> None:
    """A replaced controller powered off for good leaves sessions the writer still lists (no FIN ever
    came): they come from an address no node has any more, and are ended; a live node's still stop it."""
    topo = seed.model_copy(update={"nodes": [n for n in seed.nodes if n.name != "ctl-2"]})
    ctx = rotating(topo)
    assert ctx.topo.node("ctl-1")
    s = Script().add(
        on_fact(sql_rows(PROCESSLIST), host="ctl-1", stdout="41\tnova\t10.77.0.12:52924\n"),
        on("mariadb", host="ctl-1"),
        on_fact(sql_rows(PROCESSLIST), host="ctl-3", stdout=""),
        on("mariadb", host="ctl-1"),
        on_fact(connections(), host="ctl-1", stdout=json.dumps([{"user": "nova", "peer_host": "10.77.0.12"}])),
        on_fact(users(), host="ctl-1", stdout=json.dumps([{"user": "nova_b"}])),
        on("python3", TOOL, "retire", host="ctl-1", stdout='{"removed": []}\n'),
    )
    asyncio.run(LoginsStage().run(make(ctx, s)))
    s.assert_done()
    sql = [c.stdin for c in s.calls if c.argv == ("mariadb",)]
    assert sql == [b"KILL CONNECTION 41;\n", b"DROP USER IF EXISTS 'nova'@'%';\n"]
    assert from_departed(topo, "10.77.0.12:1") and not from_departed(topo, "10.77.0.11:1")
    assert not from_departed(topo, "localhost") and not from_departed(topo, "127.0.0.1:5")
    assert not from_departed(topo, f"{topo.network.vip}:3306")


def test_connections_parser() -> None:
    assert parse_connections(NOVA_CONNS) == [("nova_b", "10.77.0.11"), ("cinder", "10.77.0.12")]
    assert parse_connections("") == []
    with pytest.raises(ValueError):
        parse_connections('{"user": "x"}')


def test_a_changed_definitions_file_is_imported_not_a_broker_restart(seed: Topology) -> None:
    ctx = Ctx(seed, FixedSecrets(None))
    files = {f.path: f for f in desired(ctx)["ctl-1"].files}
    assert not files[rabbitmq.DEFINITIONS].restarts
    anchor = seed.node("ctl-1")
    d = make(ctx, Script())
    asyncio.run(RabbitMQStage().import_definitions(d, anchor))
    assert d.changes == 0
    s = Script().add(on("rabbitmqctl", "-q", "import_definitions", rabbitmq.DEFINITIONS, host="ctl-1"))
    d = make(ctx, s)
    d.changed_paths["ctl-2"] = {rabbitmq.DEFINITIONS}
    asyncio.run(RabbitMQStage().import_definitions(d, anchor))
    s.assert_done()


class FakeKeystone:
    def __init__(self, users: dict[str, str]):
        self.users = dict(users)  # id -> name
        self.deleted: list[str] = []

    def __call__(self, method: str, service: str, path: str, body: dict[str, Any] | None,
                 authenticated: bool) -> tuple[int, Any]:
        if path.startswith("/domains?name=Default"):
            return 200, {"domains": [{"id": "default"}]}
        if path.startswith("/users?name="):
            name = path.split("=", 1)[1].split("&", 1)[0]
            return 200, {"users": [{"id": i, "name": n} for i, n in self.users.items() if n == name]}
        if method == "DELETE" and path.startswith("/users/"):
            uid = path.rsplit("/", 1)[1]
            self.deleted.append(self.users.pop(uid))
            return 204, None
        return 404, {"error": path}


def test_the_admin_tool_retires_users_that_exist_and_tolerates_the_gone() -> None:
    ks = FakeKeystone({"u1": "nova", "u2": "nova_b", "u3": "cinder"})
    spec = {"users": [{"name": "nova", "domain": "Default"}, {"name": "glance", "domain": "Default"}]}
    assert openstack_admin.retire(ks, spec) == {"removed": ["nova"]}
    assert ks.deleted == ["nova"] and sorted(ks.users.values()) == ["cinder", "nova_b"]
    assert openstack_admin.retire(ks, spec) == {"removed": []}


def test_rotate_secrets_dry_run_names_the_logins_and_changes_nothing(tmp_path: Path) -> None:
    import io
    import shutil

    from rich.console import Console

    from hastack.cli.deploy import run_rotate_secrets
    from hastack.secrets import secrets_path
    from hastack.topology.load import load

    topo_file = tmp_path / "seed.yml"
    shutil.copy(Path(__file__).parents[2] / "examples" / "seed.yml", topo_file)
    loaded = load(topo_file)
    buf = io.StringIO()
    code = run_rotate_secrets(loaded, Console(file=buf, width=200), ["nova"], dry_run=True, yes=False)
    out = buf.getvalue()
    assert code == 0
    assert "db/nova: nova -> nova_b" in out and "keystone/nova: nova -> nova_b" in out
    assert "rabbit/cinder" not in out
    assert not secrets_path(topo_file, loaded.topology.name).exists(), "a dry run writes no secrets file"
    unknown = run_rotate_secrets(loaded, Console(file=io.StringIO()), ["swift"], dry_run=True, yes=False)
    assert unknown == 1
