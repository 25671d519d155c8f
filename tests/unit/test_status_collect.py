"""Collecting: every host in parallel, bounded in time, a host that does not answer reported as such;
the client's view of the VIP; the secrets status may read; `healthy()` for drills."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import status_cases as sc
from recordings import load

import hastack.status as status_pkg
from hastack.status import StatusSession, probes, rabbit
from hastack.status import collect as collect_mod
from hastack.status.client import ClientView, FetchError, Response, TokenCache, client_view
from hastack.status.collect import Collector, credentials
from hastack.status.model import SqlCheck
from hastack.status.rules import evaluate
from hastack.topology.model import Node, Topology
from hastack.transport.base import HostUnreachable, Result, Transport
from hastack.transport.fake import Script, on_prefix


def recorded_fleet(case: str, script: Script | None = None, delay: float = 0.0) -> Script:
    """Every host answers its recorded probe output (hosts recorded as unreachable are down)."""
    doc = sc.case_doc(case)

    def respond(host: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        assert stdin is not None and json.loads(stdin)["tasks"], "the probe's tasks travel on stdin"
        return Result(host, argv, 0, load(f"status/{case}", host).stdout, "")

    script = script or Script()
    script.add(on_prefix("python3", "-S", "-c", times=None, respond=respond, delay=delay))
    for host, why in doc["unreachable"].items():
        script.unreachable(host, why)
    return script


def connector_of(script: Script, calls: list[str]) -> collect_mod.Connector:
    async def connect(node: Node) -> Transport:
        calls.append(node.name)
        if node.name in script.down:
            raise HostUnreachable(node.name, script.down[node.name])
        return script.transport(node.name)

    return connect


async def no_client(topo: Topology, creds: probes.Credentials, tokens: TokenCache) -> ClientView:
    return sc.client_of(sc.case_doc("healthy"))


def test_collect_reads_every_host_once_and_in_parallel() -> None:
    topo, path = sc.topology("healthy")
    calls: list[str] = []
    script = recorded_fleet("healthy", delay=0.3)
    c = Collector(topo, Path(path), creds=sc.CREDS, connector=connector_of(script, calls), client=no_client)
    t0 = time.monotonic()
    state = asyncio.run(c.collect())
    assert time.monotonic() - t0 < 1.5  # six hosts of 0.3 s each, at once
    assert evaluate(state).exit_code == 0
    assert sorted(calls) == sorted(n.name for n in topo.nodes)
    assert len(script.runs()) == len(topo.nodes)  # one command per host


def test_an_unreachable_host_is_reported_and_retried_next_round() -> None:
    topo, path = sc.topology("ctl1-off")
    calls: list[str] = []
    script = recorded_fleet("ctl1-off")

    async def two_rounds() -> tuple[object, object]:
        async with Collector(topo, Path(path), creds=sc.CREDS, connector=connector_of(script, calls),
                             client=no_client) as c:
            return await c.collect(), await c.collect()

    first, second = asyncio.run(two_rounds())
    for state in (first, second):
        host = state.host("ctl-1")  # type: ignore[attr-defined]
        assert not host.reachable and "10.79.0.11" in host.error
    assert calls.count("ctl-1") == 2 and calls.count("ctl-2") == 1  # kept connections, retried the lost one


def fast(topo: Topology) -> Topology:
    return topo.model_copy(update={"ssh": topo.ssh.model_copy(update={"connect_timeout": 0.3})})


def test_a_host_that_never_answers_the_connection_costs_only_the_connect_timeout() -> None:
    topo, path = sc.topology("healthy")
    topo = fast(topo)
    script = recorded_fleet("healthy")

    async def connect(node: Node) -> Transport:
        if node.name == "net-2":
            await asyncio.sleep(60)
        return script.transport(node.name)

    t0 = time.monotonic()
    state = asyncio.run(collect_mod.read_cluster(topo, Path(path), creds=sc.CREDS, connector=connect, client=no_client))
    assert time.monotonic() - t0 < 3
    assert not state.host("net-2").reachable and "0.3s" in state.host("net-2").error
    assert evaluate(state).exit_code == 1


def test_a_host_whose_probe_hangs_is_bounded_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probes, "COMMAND_TIMEOUT", 0.2)
    monkeypatch.setattr(rabbit, "LOCAL_TIMEOUT", 0.2)
    monkeypatch.setattr(rabbit, "VIEW_TIMEOUT", 0.2)
    topo, path = sc.topology("healthy")
    script = Script(on_prefix("python3", "-S", "-c", host="ctl-2", delay=60, times=None))
    recorded_fleet("healthy", script)
    t0 = time.monotonic()
    state = asyncio.run(collect_mod.read_cluster(topo, Path(path), creds=sc.CREDS, connector=connector_of(script, []),
                                            client=no_client))
    assert time.monotonic() - t0 < 5
    ctl2 = state.host("ctl-2")
    assert ctl2.reachable and "did not finish" in ctl2.error
    assert "HOST-PROBE-FAILED" in evaluate(state).codes()


# -- the secrets status may use ---------------------------------------------------------------------------


def test_credentials_are_read_never_created(tmp_path: Path) -> None:
    topo, _ = sc.topology("healthy")
    topo_file = tmp_path / "t.yml"
    assert credentials(topo, topo_file) == probes.Credentials()
    assert not (tmp_path / ".hastack").exists()
    secrets = tmp_path / ".hastack" / topo.name / "secrets.yml"
    secrets.parent.mkdir(parents=True)
    secrets.write_text("rabbit/admin: 'r'\ndb/hastack_probe: 'p'\n")
    secrets.chmod(0o600)
    creds = credentials(topo, topo_file)
    assert creds.rabbit == ("hastack", "r") and creds.db_probe == ("hastack_probe", "p")
    assert creds.keystone_admin is None and "'r'" not in repr(creds)


# -- the client's view -------------------------------------------------------------------------------------


class FakeApi:
    """Keystone issuing a token with a catalog, nova and neutron listing their services."""

    def __init__(self, *, keystone: int = 200, refuse: bool = False):
        self.keystone, self.refuse = keystone, refuse
        self.calls: list[tuple[str, str]] = []

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                 timeout: float) -> Response:
        self.calls.append((method, url))
        if url.endswith(":5000/healthcheck"):
            return Response(self.keystone)
        if url.endswith("/v3/auth/tokens"):
            assert body is not None and json.loads(body)["auth"]["identity"]["password"]["user"]["name"] == "admin"
            if self.refuse:
                return Response(401, b"{}")
            catalog = [{"type": "compute", "endpoints": [
                {"interface": "public", "region_id": "RegionOne", "url": "http://10.77.0.10:8774/v2.1/"},
                {"interface": "internal", "region_id": "RegionOne", "url": "http://10.77.0.10:8774/v2.1"}]},
                {"type": "network", "endpoints": [{"interface": "internal", "region_id": "RegionOne",
                                                   "url": "http://10.77.0.10:9696"}]}]
            return Response(201, json.dumps({"token": {"catalog": catalog}}).encode(), {"x-subject-token": "tok"})
        if headers.get("X-Auth-Token") != "tok":
            raise FetchError("connection refused")
        if url.endswith("/os-services"):
            return Response(200, json.dumps({"services": [
                {"binary": "nova-scheduler", "host": "ctl-1", "state": "up", "status": "enabled"},
                {"binary": "nova-scheduler", "host": "ctl-2", "state": "down", "status": "enabled"}]}).encode())
        if url.endswith("/v2.0/agents"):
            return Response(200, json.dumps({"agents": [
                {"binary": "neutron-l3-agent", "host": "network-agents", "alive": True, "admin_state_up": True}]}
            ).encode())
        raise FetchError("connection refused")


def sql_ok(vip: str, password: str) -> SqlCheck:
    assert vip == "10.77.0.10" and password == "pw"
    return SqlCheck(True, "ctl-1")


def test_client_view_checks_every_api_sql_and_the_service_lists(seed: Topology) -> None:
    api = FakeApi()
    view = asyncio.run(client_view(seed, "pw", "admin-pw", fetch=api, sql=sql_ok))
    assert view.sql == SqlCheck(True, "ctl-1")
    by = {a.name: a for a in view.apis}
    assert by["keystone"].ok and by["nova_api"].status is None and "refused" in by["nova_api"].error
    assert view.catalog is not None and view.catalog.checked
    rows = {(r.kind, r.binary, r.host): r.up for r in view.catalog.rows}
    assert rows == {("compute", "nova-scheduler", "ctl-1"): True, ("compute", "nova-scheduler", "ctl-2"): False,
                    ("network", "neutron-l3-agent", "network-agents"): True}
    assert ("GET", "http://10.77.0.10:8774/v2.1/os-services") in api.calls  # the internal endpoint


def test_client_view_without_keystone_or_its_password(seed: Topology) -> None:
    view = asyncio.run(client_view(seed, None, "admin-pw", fetch=FakeApi(keystone=503), sql=sql_ok))
    assert view.sql is None and view.catalog is None and "does not answer" in view.catalog_note
    view = asyncio.run(client_view(seed, None, None, fetch=FakeApi(), sql=sql_ok))
    assert view.catalog is None and "keystone/admin" in view.catalog_note
    view = asyncio.run(client_view(seed, None, "wrong", fetch=FakeApi(refuse=True), sql=sql_ok))
    assert view.catalog is not None and not view.catalog.checked and "401" in view.catalog.error


# -- for drills ------------------------------------------------------------------------------------------------


def test_healthy_for_drills(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fake_collect(topo: Topology, path: Path) -> object:
        return sc.state("ctl1-off")

    monkeypatch.setattr(status_pkg, "read_cluster", fake_collect)
    ok, summary = status_pkg.healthy(sc.ROOT / "tests/lab/status.yml")
    assert not ok and summary.startswith("degraded: hosts: ctl-1 does not answer")
    ok, summary = status_pkg.healthy(sc.ROOT / "examples/invalid/typos.yml")
    assert not ok and summary.startswith("unknown:")


def test_the_token_is_kept_between_rounds(seed: Topology) -> None:
    api = FakeApi()
    tokens = TokenCache()
    for _ in range(2):
        view = asyncio.run(client_view(seed, None, "admin-pw", fetch=api, sql=sql_ok, tokens=tokens))
        assert view.catalog is not None and view.catalog.checked
    assert [c for c in api.calls if c[1].endswith("/v3/auth/tokens")] == [("POST", "https://10.77.0.10:5000/v3/auth/tokens")]


def test_healthy_from_inside_a_running_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fake_collect(topo: Topology, path: Path) -> object:
        return sc.state("healthy")

    monkeypatch.setattr(status_pkg, "read_cluster", fake_collect)

    async def caller() -> tuple[bool, str]:
        return status_pkg.healthy(sc.ROOT / "tests/lab/status.yml")

    assert asyncio.run(caller()) == (True, "healthy")


def test_a_kept_token_survives_the_process_in_a_private_file(seed: Topology, tmp_path: Path) -> None:
    api = FakeApi()
    path = tmp_path / "state" / "status-token.json"
    asyncio.run(client_view(seed, None, "admin-pw", fetch=api, sql=sql_ok, tokens=TokenCache.load(path)))
    assert path.stat().st_mode & 0o777 == 0o600 and "tok" in path.read_text()
    again = TokenCache.load(path)  # a new run
    assert again.valid
    view = asyncio.run(client_view(seed, None, "admin-pw", fetch=api, sql=sql_ok, tokens=again))
    assert view.catalog is not None and view.catalog.checked
    assert len([c for c in api.calls if c[1].endswith("/v3/auth/tokens")]) == 1
    path.chmod(0o644)  # somebody loosened it: not trusted any more
    assert not TokenCache.load(path).valid


def test_a_refused_kept_token_is_replaced_in_the_same_round(seed: Topology, tmp_path: Path) -> None:
    api = FakeApi()
    stale = TokenCache(path=tmp_path / "t.json")
    stale.keep("old-token", {"compute": "http://10.77.0.10:8774/v2.1", "network": "http://10.77.0.10:9696"})

    def fetch(method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float) -> Response:
        if headers.get("X-Auth-Token") == "old-token":
            return Response(401, b"{}")
        return api(method, url, headers, body, timeout)

    view = asyncio.run(client_view(seed, None, "admin-pw", fetch=fetch, sql=sql_ok, tokens=stale))
    assert view.catalog is not None and view.catalog.checked and not view.catalog.errors
    assert len(view.catalog.rows) == 3 and stale.token == "tok"


# -- the drills' status session ------------------------------------------------------------------------


class _CountingCollector:
    """Stands in for Collector: counts rounds, records close, answers a recorded state."""

    made = 0

    def __init__(self, state: Any) -> None:
        type(self).made += 1
        self.state, self.rounds, self.closed = state, 0, False
        self.loops: set[int] = set()

    async def collect(self) -> Any:
        self.rounds += 1
        self.loops.add(id(asyncio.get_running_loop()))
        return self.state

    async def close(self) -> None:
        self.closed = True


def test_a_status_session_keeps_one_collector_across_polls_and_threads() -> None:
    """Drills poll status every second through a heal: one collector (one SSH connection per host)
    for the whole session, on one event loop, whichever thread asks; closed with the session."""
    made: list[_CountingCollector] = []

    def factory() -> Any:
        made.append(_CountingCollector(sc.state("healthy")))
        return made[-1]

    topo, _ = sc.topology("healthy")
    session = StatusSession(topo, "unused.yml", collector=factory)
    first = session()
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        later = list(pool.map(lambda _: session(), range(6)))
    assert len(made) == 1 and made[0].rounds == 7 and len(made[0].loops) == 1
    assert all(r == first for r in later)
    assert isinstance(first[0], bool) and first[1]
    session.close()
    assert made[0].closed
    session.close()  # twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        session()


def test_a_status_session_judges_the_topology_it_was_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """bench drills a tuned topology: the session's collector is built from that topology, not re-read
    from the file (which here does not even exist)."""
    topo, _ = sc.topology("healthy")
    tuned = topo.model_copy(update={"name": "tuned"})
    built: list[tuple[Any, Any]] = []

    def fake_collector(t: Any, path: Any) -> Any:
        built.append((t, path))
        return _CountingCollector(sc.state("healthy"))

    monkeypatch.setattr(status_pkg, "Collector", fake_collector)
    with StatusSession(tuned, tmp_path / "missing.yml") as session:
        session()
        session()
    assert built == [(tuned, tmp_path / "missing.yml")]
