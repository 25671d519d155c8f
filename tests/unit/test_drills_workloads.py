"""Workloads without a lab: pacing and its bounds, the watcher, address safety, and the two protocols
that can be served on loopback (a TCP listener for the VIP probe, an HTTP server for Keystone)."""

from __future__ import annotations

import dataclasses
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from hastack.drills import workloads as wl
from hastack.drills.samples import REDELIVERED, SKIPPED, STALE, Recorder, Sample
from hastack.secrets import Secrets
from hastack.topology.model import Topology

LOOP = wl.Endpoints(vip="127.0.0.1", controllers={"ctl-1": "127.0.0.1"}, network="10.77.0.0/24")
CREDS = wl.Credentials(keystone_password="ks-secret-value", db_password="db-secret", rabbit_password="rb-secret")



def served(samples: Sequence[Sample]) -> list[Sample]:
    """The operations a worker ran: on a loaded machine (a lab beside the unit tier) the pacer may
    also record "all workers busy" skips, which say nothing about the client under test."""
    return [s for s in samples if s.flag != SKIPPED]

def test_endpoints_refuse_addresses_outside_the_topology(seed: Topology) -> None:
    ep = wl.Endpoints.from_topology(seed)
    assert ep.vip == "10.77.0.10"
    assert list(ep.controllers) == ["ctl-1", "ctl-2", "ctl-3"]
    assert ep.quorum_queue  # the test queue is of the kind OpenStack's queues are
    mirrored = seed.model_copy(update={"rabbitmq": seed.rabbitmq.model_copy(update={"queues": "mirrored"})})
    assert not wl.Endpoints.from_topology(mirrored).quorum_queue
    with pytest.raises(wl.UnsafeTarget):
        wl.Endpoints(vip="192.0.2.1", controllers={}, network="10.77.0.0/24")
    with pytest.raises(wl.UnsafeTarget):
        wl.Endpoints(vip="10.77.0.10", controllers={"x": "8.8.8.8"}, network="10.77.0.0/24")
    wl.Endpoints(vip="127.0.0.1", controllers={"x": "::1"}, network="10.77.0.0/24")


def test_credentials_only_from_existing_secrets_and_never_in_repr() -> None:
    empty = Secrets(None, {"keystone/admin": "k"})
    with pytest.raises(KeyError, match="db/hastack_probe, rabbit/admin"):
        wl.Credentials.from_secrets(empty)
    assert empty.names() == ["keystone/admin"]  # nothing invented
    full = Secrets(None, {"keystone/admin": "k" * 12, "db/hastack_probe": "d" * 12, "rabbit/admin": "r" * 12})
    c = wl.Credentials.from_secrets(full)
    assert (c.keystone_password, c.db_user, c.rabbit_user, c.rabbit_vhost) == ("k" * 12, "hastack_probe",
                                                                              "hastack", "drills")
    assert "k" * 12 not in repr(c) and "d" * 12 not in repr(c)


# -- pacing ------------------------------------------------------------------------------------------------

def test_paced_starts_operations_at_the_rate_and_stops_at_the_duration() -> None:
    rec = Recorder()
    t0 = time.monotonic()
    wl.paced(rec, threading.Event(), 0.3, stream="vip", rate=100, workers=4, op=lambda _: "n",
             ids=lambda i: f"r-{i}")
    elapsed = time.monotonic() - t0
    samples = rec.snapshot().stream("vip")
    assert 10 <= len(samples) <= 31  # count-bounded: rate x duration + 1
    assert len({s.id for s in samples}) == len(samples)
    assert served(samples) and all(s.ok and s.node == "n" for s in served(samples))
    assert elapsed < 5.0  # it stops at the duration (0.3 s); the rest is room for a loaded machine


def test_paced_stops_on_the_event() -> None:
    """The fifth operation sets the event; without the stop the pacer would run 30 s (1501
    operations). The bounds leave room for a loaded machine, not for ignoring the event."""
    rec, stop = Recorder(), threading.Event()

    def op(op_id: str) -> None:
        if int(op_id) >= 4:
            stop.set()

    t0 = time.monotonic()
    wl.paced(rec, stop, 30.0, stream="vip", rate=50, workers=2, op=op, ids=str)
    assert time.monotonic() - t0 < 10.0
    assert 5 <= rec.count("vip") <= 100


def test_a_stalled_client_records_skips_not_an_unbounded_queue() -> None:
    rec = Recorder()
    wl.paced(rec, threading.Event(), 0.3, stream="db", rate=100, workers=1, op=lambda _: time.sleep(0.12),
             ids=lambda i: f"r-{i}")
    samples = rec.snapshot().stream("db")
    skipped = [s for s in samples if s.flag == SKIPPED]
    done = [s for s in samples if s.ok]
    assert 1 <= len(done) <= 4
    assert len(skipped) >= 5
    assert all(not s.ok and "workers busy" in (s.error or "") for s in skipped)


def test_failures_are_samples_with_a_short_error() -> None:
    rec = Recorder()

    def op(op_id: str) -> str | None:
        raise ConnectionRefusedError(f"refused {op_id}")

    wl.paced(rec, threading.Event(), 0.05, stream="db", rate=100, workers=2, op=op, ids=lambda i: f"r-{i}")
    samples = rec.snapshot().stream("db")
    assert samples and all(not s.ok for s in samples)
    assert samples[0].error == "ConnectionRefusedError: refused r-0"
    assert samples[0].id == "r-0"


def test_clients_are_per_thread_and_reopened_after_drop() -> None:
    made: list[int] = []
    closed: list[int] = []
    clients = wl.Clients(lambda: made.append(len(made)) or len(made), closed.append)
    a = clients.get()
    assert clients.get() == a
    other: list[int] = []
    t = threading.Thread(target=lambda: other.append(clients.get()))
    t.start()
    t.join()
    assert other[0] != a
    clients.drop()
    assert closed == [a]
    assert clients.get() not in (a, other[0])
    clients.close_all()
    assert len(closed) == 3


# -- watcher -----------------------------------------------------------------------------------------------

def test_placement_parsing_checks_the_observer() -> None:
    p = wl.placement(1.0, {"vip": ["ctl-2", "ctl-1"], "agents": ("net-1",), "galera_writer": "ctl-1"})
    assert (p.vip, p.agents, p.writer, p.error) == (("ctl-1", "ctl-2"), ("net-1",), "ctl-1", None)
    assert wl.placement(1.0, {}).vip == ()
    assert wl.placement(1.0, {"vip": "ctl-1"}).error is not None
    assert wl.placement(1.0, {"vip": [], "agents": [], "galera_writer": 3}).error is not None


def test_sampler_samples_at_its_rate_and_records_observer_errors() -> None:
    calls = []

    def observe() -> dict[str, Any]:
        calls.append(1)
        if len(calls) % 3 == 0:
            raise TimeoutError("node hung")
        return {"vip": ["ctl-1"], "agents": ["net-1"], "galera_writer": "ctl-1"}

    rec = Recorder()
    wl.Sampler(observe, rate=100).run(rec, threading.Event(), 0.2)
    ps = rec.snapshot().placements
    assert 5 <= len(ps) <= 21
    assert sum(1 for p in ps if p.error) == len(ps) // 3
    assert all(p.error and "node hung" in p.error for p in ps if not p.vip)


# -- loopback servers --------------------------------------------------------------------------------------

def _listener() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s, s.getsockname()[1]


def test_vip_probe_connects_and_fails_fast_when_nothing_listens() -> None:
    srv, port = _listener()
    try:
        probe = wl.VipProbe(wl.Endpoints("127.0.0.1", {}, "10.77.0.0/24", vip_probe_port=port), "r", rate=100)
        rec = Recorder()
        probe.run(rec, threading.Event(), 0.1)
        assert rec.count("vip") >= 5
        assert all(s.ok for s in served(rec.snapshot().samples))
    finally:
        srv.close()
    rec = Recorder()
    wl.VipProbe(wl.Endpoints("127.0.0.1", {}, "10.77.0.0/24", vip_probe_port=port), "r", rate=50).run(
        rec, threading.Event(), 0.05)
    assert rec.count("vip") >= 1
    assert not any(s.ok for s in rec.snapshot().samples)


class _Keystone(http.server.BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]] = []
    gets: list[str] = []
    status = 201
    list_status = 200

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        length = int(self.headers.get("Content-Length", 0))
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        if type(self).status == 201:
            self.send_header("X-Subject-Token", "gAAAA-token")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 - Neutron's network list on the same test server
        ok = self.path == "/v2.0/networks" and self.headers.get("X-Auth-Token") == "gAAAA-token"
        type(self).gets.append(self.path if ok else "refused")
        body = b'{"networks": []}' if ok and type(self).list_status == 200 else b"{}"
        self.send_response(type(self).list_status if ok else 401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def keystone() -> Iterator[tuple[type[_Keystone], int]]:
    handler = type("K", (_Keystone,), {"bodies": [], "gets": [], "status": 201, "list_status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield handler, server.server_address[1]
    server.shutdown()
    server.server_close()


def test_keystone_tokens_are_issued_with_a_scoped_password_request(keystone: tuple[type[_Keystone], int]) -> None:
    handler, port = keystone
    ep = wl.Endpoints("127.0.0.1", {}, "10.77.0.0/24", keystone_port=port)
    rec = Recorder()
    wl.KeystoneTokens(ep, CREDS, "r", rate=50).run(rec, threading.Event(), 0.1)
    samples = served(rec.snapshot().stream("keystone"))
    assert samples and all(s.ok for s in samples)
    body = handler.bodies[0]["auth"]
    assert body["identity"]["password"]["user"] == {"name": "admin", "domain": {"name": "Default"},
                                                    "password": "ks-secret-value"}
    assert body["scope"]["project"]["name"] == "admin"


def test_keystone_refusals_are_failures_without_the_password(keystone: tuple[type[_Keystone], int]) -> None:
    handler, port = keystone
    handler.status = 401
    ep = wl.Endpoints("127.0.0.1", {}, "10.77.0.0/24", keystone_port=port)
    rec = Recorder()
    wl.KeystoneTokens(ep, CREDS, "r", rate=50).run(rec, threading.Event(), 0.06)
    samples = served(rec.snapshot().stream("keystone"))
    assert samples and all(not s.ok and s.error == "RuntimeError: HTTP 401" for s in samples)


def test_network_list_holds_one_login_and_lists_with_its_token(keystone: tuple[type[_Keystone], int]) -> None:
    handler, port = keystone
    ep = wl.Endpoints("127.0.0.1", {}, "10.77.0.0/24", keystone_port=port, neutron_port=port)
    rec = Recorder()
    w = wl.NeutronNetworks(ep, CREDS, "r", rate=50)
    w.prepare()
    w.run(rec, threading.Event(), 0.1)
    samples = served(rec.snapshot().stream("networks"))
    assert samples and all(s.ok for s in samples)  # how many fit in 0.1 s depends on the load
    assert len(handler.bodies) == 1 and set(handler.gets) == {"/v2.0/networks"}


def test_a_failing_network_list_is_a_failure(keystone: tuple[type[_Keystone], int]) -> None:
    handler, port = keystone
    handler.list_status = 503
    ep = wl.Endpoints("127.0.0.1", {}, "10.77.0.0/24", keystone_port=port, neutron_port=port)
    rec = Recorder()
    wl.NeutronNetworks(ep, CREDS, "r", rate=50).run(rec, threading.Event(), 0.06)
    samples = served(rec.snapshot().stream("networks"))
    assert samples and all(not s.ok and s.error == "RuntimeError: HTTP 503" for s in samples)


# -- broker and database pieces that need no server -------------------------------------------------------

class _Props:
    def __init__(self, message_id: str | None) -> None:
        self.message_id = message_id


class _Method:
    def __init__(self, redelivered: bool) -> None:
        self.redelivered = redelivered


def test_consumed_messages_are_flagged_stale_or_redelivered() -> None:
    broker = wl.Broker(LOOP, CREDS, "run7")
    rec = Recorder()
    broker._record(rec, _Method(False), _Props("run7-m1"), b"run7-m1", "10.77.0.11")
    broker._record(rec, _Method(True), _Props("run7-m1"), b"", "10.77.0.12")
    broker._record(rec, _Method(False), _Props("run6-m1"), b"", "10.77.0.12")
    broker._record(rec, _Method(False), _Props(None), b"run7-m2", "10.77.0.12")
    flags = [(s.id, s.flag, s.node) for s in rec.snapshot().samples]
    assert flags == [("run7-m1", None, "10.77.0.11"), ("run7-m1", REDELIVERED, "10.77.0.12"),
                     ("run6-m1", STALE, "10.77.0.12"), ("run7-m2", None, "10.77.0.12")]


def test_db_verify_reads_every_node_and_marks_the_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = wl.Endpoints("10.77.0.10", {"ctl-1": "10.77.0.11", "ctl-2": "10.77.0.12"}, "10.77.0.0/24")
    db = wl.DbWrites(ep, CREDS, "r", verify_timeout=0.5)

    def read(address: str) -> list[str]:
        if address == "10.77.0.12":
            raise ConnectionRefusedError("down")
        return ["r-d0", "r-d1"]

    monkeypatch.setattr(db, "read_node", read)
    rec = Recorder()
    t0 = time.monotonic()
    db.verify(rec)
    assert time.monotonic() - t0 < 0.5
    snap = rec.snapshot()
    assert snap.checks["db_present"] == {"ctl-1": ["r-d0", "r-d1"], "ctl-2": None}
    assert snap.checks["galera_conf_id"] == [None, None]  # never prepared: no generation to compare
    assert any(e.kind == "note" and "ctl-2" in e.text for e in snap.events)


def test_db_verify_reads_the_galera_generation_after_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = wl.Endpoints("10.77.0.10", {"ctl-1": "10.77.0.11"}, "10.77.0.0/24")
    db = wl.DbWrites(ep, CREDS, "r", verify_timeout=0.5)
    generations = iter([41, 43])
    monkeypatch.setattr(db, "conf_id", lambda: next(generations))
    monkeypatch.setattr(db, "read_node", lambda address: ["r-d0"])
    db.conf_before = db.conf_id()
    rec = Recorder()
    db.verify(rec)
    assert rec.snapshot().checks["galera_conf_id"] == [41, 43]


def test_sql_names_the_probe_table_and_the_wsrep_node() -> None:
    assert "PRIMARY KEY" in wl.CREATE_TABLE and "IF NOT EXISTS" in wl.CREATE_TABLE
    assert "@@wsrep_node_name" in wl.INSERT


def test_standard_workloads() -> None:
    names = [w.name for w in wl.standard(LOOP, CREDS, "r")]
    assert names == ["vip", "keystone", "db", "broker"]
    with_neutron = dataclasses.replace(LOOP, neutron_port=9696)
    assert [w.name for w in wl.standard(with_neutron, CREDS, "r")] == ["vip", "keystone", "networks", "tenant", "db",
                                                                       "broker"]


# -- the tenant's network and router --------------------------------------------------------------------

class FakeNeutron:
    """Neutron's API as far as the drill's tenant network uses it: list by filters, create, attach."""

    def __init__(self, ports_active_after: int = 0) -> None:
        self.objects: dict[str, list[dict[str, Any]]] = {"network": [], "subnet": [], "router": [], "port": []}
        self.calls: list[str] = []
        self.port_reads, self.active_after = 0, ports_active_after

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        self.calls.append(f"{method} {path}")
        if path == "/v3/auth/tokens":
            return httpx.Response(201, headers={"X-Subject-Token": "tok"}, json={})
        assert request.headers["X-Auth-Token"] == "tok"
        kind = path.split("/")[2].rstrip("s")
        if method == "GET":
            if kind == "port":
                self.port_reads += 1
            query = dict(request.url.params)
            found = [o for o in self.objects[kind] if all(o.get(k) == v for k, v in query.items())]
            if kind == "port":
                found = [{**o, "status": "ACTIVE" if self.port_reads > self.active_after else "DOWN"} for o in found]
            return httpx.Response(200, json={f"{kind}s": found})
        if method == "POST":
            obj = {**json.loads(request.content)[kind], "id": f"{len(self.calls):08d}-0000-0000-0000-000000000000"}
            self.objects[kind].append(obj)
            if kind == "subnet" and obj["enable_dhcp"]:
                self.objects["port"].append({"id": "dhcp0000", "device_owner": "network:dhcp", "device_id": "dhcp",
                                             "network_id": obj["network_id"]})
            return httpx.Response(201, json={kind: obj})
        assert method == "PUT" and path.endswith("/add_router_interface")
        router = path.split("/")[3]
        subnet = json.loads(request.content)["subnet_id"]
        net = next(s["network_id"] for s in self.objects["subnet"] if s["id"] == subnet)
        self.objects["port"].append({"id": "rtr00000", "device_owner": "network:router_interface",
                                     "device_id": router, "network_id": net})
        return httpx.Response(200, json={})


def tenant(api: FakeNeutron, **kw: Any) -> wl.TenantNetwork:
    w = wl.TenantNetwork(dataclasses.replace(LOOP, neutron_port=9696), CREDS, **kw)
    w.client = w.keystone.client = httpx.Client(transport=httpx.MockTransport(api.handle))
    return w


def test_the_tenant_network_is_created_once_and_found_after() -> None:
    api = FakeNeutron(ports_active_after=2)
    w = tenant(api, poll=0.01)
    w.prepare()
    assert [o["name"] for k in ("network", "subnet", "router") for o in api.objects[k]] == ["hastack-drill"] * 3
    subnet = api.objects["subnet"][0]
    assert (subnet["cidr"], subnet["gateway_ip"], subnet["enable_dhcp"]) == ("192.0.2.0/24", "192.0.2.1", True)
    assert sum(c.endswith("/add_router_interface") for c in api.calls) == 1
    assert api.port_reads >= 3  # waited for the ports to turn ACTIVE
    rec = Recorder()
    w.run(rec, threading.Event(), 1)
    assert rec.snapshot().checks["tenant"]["router"] == api.objects["router"][0]["id"]
    api.calls.clear()
    tenant(api, poll=0.01).prepare()  # the next drill finds everything: no create, no attach
    assert not [c for c in api.calls if not c.startswith("GET") and "auth" not in c]


def test_ports_that_never_turn_active_stop_the_drill_before_it_starts() -> None:
    w = tenant(FakeNeutron(ports_active_after=10**6), ready_timeout=0.05, poll=0.01)
    with pytest.raises(RuntimeError, match="not ACTIVE after 0 s: .*network:dhcp"):
        w.prepare()


# -- RPC through oslo.messaging ---------------------------------------------------------------------------

def test_the_rpc_client_uses_the_services_options_and_every_broker(seed: Topology) -> None:
    from hastack.drills.workloads import rpc

    opts = rpc.options_for(seed)
    assert opts["DEFAULT"]["rpc_response_timeout"] == seed.tuning.rabbitmq.rpc_response_timeout
    assert opts["oslo_messaging_rabbit"]["rabbit_quorum_queue"] is True
    assert opts["oslo_messaging_rabbit"]["heartbeat_timeout_threshold"] == 20
    text = rpc.config_text(opts)
    assert "rabbit_quorum_queue = true" in text and "[oslo_messaging_rabbit]" in text
    creds = dataclasses.replace(CREDS, rabbit_password="p@ss/w:rd")
    url = rpc.transport_url(wl.Endpoints.from_topology(seed), creds)
    assert url.count("@10.77.0.1") == 3 and "p%40ss%2Fw%3Ard@" in url and url.endswith("/drills")
    assert "p@ss" not in rpc.config_text(opts)  # the password is in the URL only, never in the file
    with pytest.raises(ValueError, match="line break"):
        rpc.config_text({"DEFAULT": {"x": "a\nb"}})
    names = [w.name for w in wl.standard(wl.Endpoints.from_topology(seed), CREDS, "r", rpc_options=opts)]
    assert names[-1] == "rpc"


def test_the_rpc_connection_notes_never_carry_the_password() -> None:
    import logging

    from hastack.drills.workloads.rpc import _Connections

    rec = Recorder()
    h = _Connections(rec, "s3cr/et")
    text = "AMQP server on rabbit://u:s3cr%2Fet@h is unreachable"
    h.emit(logging.LogRecord("x", logging.ERROR, "f", 1, text, (), None))
    h.emit(logging.LogRecord("x", logging.INFO, "f", 1, "something else", (), None))
    (note,) = rec.snapshot().events
    assert "s3cr" not in note.text and "***" in note.text and note.ok is False


def test_oslo_messaging_log_lines_stay_off_the_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from hastack.drills.workloads.rpc import quiet_loggers

    quiet_loggers()
    logging.getLogger("oslo.messaging._drivers.pool").warning("Connection pool limit exceeded")
    logging.getLogger("amqp").warning("Received method (60, 30) during closing channel 1")
    assert capsys.readouterr().err == ""
