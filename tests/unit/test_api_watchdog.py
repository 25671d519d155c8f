"""The API watchdog: its restart rule, its readers of systemd and HTTP, and what deploy renders for it."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hastack.agents.api_watchdog import (
    Api,
    Judge,
    LogGuard,
    active_for,
    answers,
    check_round,
    guard_hits,
    in_unit,
    logged_by,
    parse_show,
    read_tail,
)
from hastack.components import api_watchdog, haproxy
from hastack.components.registry import desired
from hastack.topology.model import Topology

SHOW = """Id=placement-api.service
ActiveState=active
ActiveEnterTimestampMonotonic=1000000

Id=keystone.service
ActiveState=activating
ActiveEnterTimestampMonotonic=0
"""


def test_silent_after_grace_is_due_only_after_the_count_and_counting_starts_again() -> None:
    j = Judge(failures=3, grace_s=60)
    assert [j.due("p", False, 100) for _ in range(3)] == [False, False, True]
    assert [j.due("p", False, 100) for _ in range(3)] == [False, False, True]


def test_one_answer_resets_the_count() -> None:
    j = Judge(failures=2, grace_s=60)
    assert not j.due("p", False, 100)
    assert not j.due("p", True, 100)
    assert not j.due("p", False, 100)
    assert j.due("p", False, 100)


def test_within_grace_or_not_active_is_never_due() -> None:
    j = Judge(failures=1, grace_s=60)
    assert not j.due("p", False, 59.9)
    assert not j.due("p", False, None)
    assert j.due("p", False, 60)


def test_systemctl_show_of_several_units() -> None:
    props = parse_show(SHOW)
    assert set(props) == {"placement-api", "keystone"}
    assert active_for(props["placement-api"], 31_000_000) == 30.0
    assert active_for(props["keystone"], 31_000_000) is None
    assert active_for({}, 1) is None


@pytest.fixture
def http_port() -> Iterator[int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(500 if self.path == "/broken" else 200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_any_http_status_is_an_answer(http_port: int) -> None:
    assert answers(f"http://127.0.0.1:{http_port}/", 2)
    assert answers(f"http://127.0.0.1:{http_port}/broken", 2)


def test_a_listener_that_never_answers_and_a_closed_port_are_silent() -> None:
    with socket.socket() as mute, socket.socket() as closed:
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)  # accepts into the backlog, never reads: like a hung uWSGI worker
        closed.bind(("127.0.0.1", 0))  # bound, not listening: refused
        assert not answers(f"http://127.0.0.1:{mute.getsockname()[1]}/", 0.3)
        assert not answers(f"http://127.0.0.1:{closed.getsockname()[1]}/", 0.3)


def test_a_round_restarts_only_the_silent_active_unit_past_its_grace() -> None:
    apis = [Api("placement-api", "http://a/"), Api("keystone", "http://b/"), Api("nova-api", "http://c/")]
    show = ("Id=placement-api.service\nActiveState=active\nActiveEnterTimestampMonotonic=1000000\n\n"
            "Id=keystone.service\nActiveState=active\nActiveEnterTimestampMonotonic=1000000\n\n"
            "Id=nova-api.service\nActiveState=active\nActiveEnterTimestampMonotonic=290000000\n")
    judge = Judge(failures=2, grace_s=60)
    silent = {"http://a/", "http://c/"}  # nova-api is silent too, but started 11 s ago

    def look() -> list[tuple[Api, float]]:
        return check_round(apis, judge, 1, probe=lambda url, _t: url not in silent,
                           show=lambda units: show, now_us=lambda: 301_000_000)

    assert look() == []
    assert look() == [(apis[0], 300.0)]


def test_rendered_for_each_controller_with_its_own_addresses(seed: Topology) -> None:
    from conftest import FixedSecrets
    from hastack.components.base import Ctx

    state = desired(Ctx(seed, FixedSecrets(None)))
    for node in seed.controllers:
        files = {f.path: f for f in state[node.name].files}
        conf = json.loads(files[api_watchdog.CONF].data)
        assert {a["unit"] for a in conf["apis"]} == {a.unit for a in haproxy.apis(seed)}
        assert all(a["url"].startswith(f"http://{node.address}:") for a in conf["apis"])
        assert conf["failures"] * conf["interval_s"] == 60 and conf["grace_s"] == 180
        assert files[api_watchdog.PROGRAM].mode == 0o755
        assert f"ExecStart=/usr/bin/python3 {api_watchdog.PROGRAM} {api_watchdog.CONF}" in \
            files[api_watchdog.UNIT_FILE].data.decode()
        assert api_watchdog.UNIT in state[node.name].units
    for node in seed.nodes:
        if not node.has("controller"):
            assert api_watchdog.UNIT not in state[node.name].units


def test_off_in_the_topology_renders_nothing(seed: Topology) -> None:
    off = seed.tuning.model_copy(update={"api_watchdog": seed.tuning.api_watchdog.model_copy(
        update={"enabled": False})})
    topo = seed.model_copy(update={"tuning": off})
    assert not any(api_watchdog.COMPONENT.applies(topo, n) for n in topo.nodes)


def test_every_api_names_its_unit() -> None:
    assert all(a.unit for a in haproxy.APIS)
    assert len({a.unit for a in haproxy.APIS}) == len(haproxy.APIS)


def test_telemetry_apis_read_the_log_their_uwsgi_writes() -> None:
    """The watchdog quotes an API's log when it restarts it: telemetry's are under gnocchi/ and aodh/."""
    from hastack.components import telemetry

    logs = {a.unit: a.log for a in haproxy.APIS if a.service == "telemetry"}
    assert logs == {spec.unit: dict(spec.lines)["logto"] for spec in (telemetry.GNOCCHI_API, telemetry.AODH_API)}


# Two lines of ceilometer's notification agent as it wrote them in the four-server lab (2026-12-04),
# after a controller's power cycle: worker 1592 gave up on its Gnocchi publisher.
CEILOMETER_LOG = """2026-12-04 15:43:12.701 1313 INFO ceilometer.notification [-] Starting
2026-12-04 15:43:46.204 1592 ERROR ceilometer.pipeline.base [-] Unable to load publisher gnocchi://: \
keystoneauth1.exceptions.connection.ConnectTimeout: Request to http://10.78.0.10:5000/v3/auth/tokens timed out
2026-12-04 15:43:46.615 1592 ERROR ceilometer.pipeline.base Traceback (most recent call last):
Unable to load publisher (a continuation line without a PID is not a hit)
2026-12-04 16:01:02.000 2210 ERROR ceilometer.pipeline.base [-] Unable to load publisher gnocchi://: again
"""


def test_log_lines_with_the_text_give_their_pids() -> None:
    hits = logged_by(CEILOMETER_LOG.splitlines(), "Unable to load publisher")
    assert [pid for pid, _ in hits] == [1592, 2210]
    assert "ConnectTimeout" in hits[0][1]


def test_a_guard_fires_only_for_a_process_of_the_current_run(tmp_path) -> None:
    log = tmp_path / "agent.log"
    log.write_text(CEILOMETER_LOG)
    guard = LogGuard("ceilometer-agent-notification", str(log), "Unable to load publisher")
    assert guard_hits(guard, alive=lambda pid, unit: False) == []  # an earlier run's PIDs: gone
    hits = guard_hits(guard, alive=lambda pid, unit: pid == 2210 and unit == guard.unit)
    assert len(hits) == 1 and hits[0].endswith("again")
    missing = LogGuard(guard.unit, str(tmp_path / "none.log"), guard.text)
    assert guard_hits(missing, alive=lambda pid, unit: True) == []


def test_the_tail_reader_keeps_the_end_of_a_large_log(tmp_path) -> None:
    log = tmp_path / "big.log"
    log.write_text("x" * 5000 + "\nlast line\n")
    assert read_tail(str(log), size=100)[-1] == "last line"
    assert len("".join(read_tail(str(log), size=100))) < 100


def test_in_unit_reads_the_process_cgroup() -> None:
    import os

    assert not in_unit(os.getpid(), "hastack-no-such-unit")
    assert not in_unit(2**22 + 7, "anything")  # above pid_max's default: no such process
    own = Path(f"/proc/{os.getpid()}/cgroup").read_text().splitlines()[-1].rsplit("/", 1)[-1]
    if own.endswith(".service"):
        assert in_unit(os.getpid(), own.removesuffix(".service"))


def test_telemetry_renders_the_ceilometer_publisher_guard(seed: Topology) -> None:
    from conftest import FixedSecrets, load_example
    from hastack.components import telemetry
    from hastack.components.base import Ctx

    four = load_example("four-servers.yml")
    assert four.runs("telemetry") and not seed.runs("telemetry")
    guard = {"unit": telemetry.NOTIFICATION_UNIT, "log": telemetry.NOTIFICATION_LOG,
             "text": telemetry.PUBLISHER_FAILED}
    for topo, expected in ((four, [guard]), (seed, [])):
        state = desired(Ctx(topo, FixedSecrets(None)))
        for node in topo.controllers:
            conf = json.loads({f.path: f for f in state[node.name].files}[api_watchdog.CONF].data)
            assert conf["log_guards"] == expected
    assert telemetry.NOTIFICATION_LOG.endswith(f"{telemetry.NOTIFICATION_UNIT}.log")
