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
    FrozenWatch,
    Judge,
    LogGuard,
    active_for,
    answers,
    check_round,
    frozen,
    guard_hits,
    in_unit,
    parse_show,
    proc_state,
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
        if not node.has("controller"):  # network nodes run it for their agents (test further down)
            assert (api_watchdog.UNIT in state[node.name].units) == node.has("network")


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


def test_log_lines_with_the_text_give_their_pids(tmp_path) -> None:
    log = tmp_path / "agent.log"
    log.write_text(CEILOMETER_LOG)
    seen: list[int] = []
    hits = guard_hits(LogGuard("u", str(log), "Unable to load publisher"),
                      alive=lambda pid, unit: seen.append(pid) is None)
    assert seen == [1592, 2210]  # each PID asked once; the continuation line has none
    assert len(hits) == 2 and "ConnectTimeout" in hits[0]


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
             "text": telemetry.PUBLISHER_FAILED, "via": "systemd"}
    for topo, expected in ((four, [guard]), (seed, [])):
        state = desired(Ctx(topo, FixedSecrets(None)))
        for node in topo.controllers:
            conf = json.loads({f.path: f for f in state[node.name].files}[api_watchdog.CONF].data)
            assert conf["log_guards"] == expected
    assert telemetry.NOTIFICATION_LOG.endswith(f"{telemetry.NOTIFICATION_UNIT}.log")


# The DHCP agent's give-up, in neutron's own words (neutron/agent/dhcp/agent.py, _report_state), among
# report failures and a recovery, written as oslo.log writes them.
DHCP_LOG = """2026-12-05 12:30:01.100 4100 INFO neutron.agent.dhcp.agent [-] DHCP agent started
2026-12-05 12:31:02.123 4100 ERROR neutron.agent.dhcp.agent [-] Failed reporting state!: \
oslo_messaging.exceptions.MessagingTimeout: Timed out waiting for a reply
2026-12-05 12:31:32.123 4100 ERROR neutron.agent.dhcp.agent [-] Failed reporting state!: again
2026-12-05 12:32:02.123 4100 INFO neutron.agent.dhcp.agent [-] Successfully reported state after a previous failure.
2026-12-05 12:32:32.123 4100 ERROR neutron.agent.dhcp.agent [-] Failed reporting state!: once more
2026-12-05 12:33:02.123 4100 WARNING neutron.agent.dhcp.agent [-] Neutron server does not support state report. \
State report for this agent will be disabled.
"""


def test_the_agent_give_up_guard_hits_only_neutrons_line_under_a_live_pid(tmp_path) -> None:
    log = tmp_path / "dhcp.log"
    log.write_text(DHCP_LOG)
    gave_up = LogGuard("neutron-dhcp-agent", str(log), api_watchdog.AGENT_GAVE_UP, via="pacemaker")
    hits = guard_hits(gave_up, alive=lambda pid, unit: pid == 4100)
    assert len(hits) == 1 and hits[0].endswith("will be disabled.")  # report failures are not a give-up
    assert guard_hits(gave_up, alive=lambda pid, unit: False) == []  # the agent was restarted since


def test_a_stopped_main_process_is_frozen_and_only_two_checks_in_a_row_are_due() -> None:
    states = {"10": "T", "11": "S", "12": "t"}
    assert frozen("10", states.__getitem__) and frozen("12", states.__getitem__)
    assert not frozen("11", states.__getitem__) and not frozen("", states.__getitem__)
    w = FrozenWatch(checks=2)
    assert [w.due("a", True), w.due("a", True), w.due("a", True)] == [False, True, False]
    assert [w.due("b", True), w.due("b", False), w.due("b", True), w.due("b", True)] == [False, False, False, True]


def test_a_real_stopped_process_reads_as_frozen() -> None:
    import os
    import signal
    import subprocess
    import time

    def state_within(pid: str, wanted: tuple[str, ...], seconds: float = 5) -> str:
        deadline = time.monotonic() + seconds
        while (state := proc_state(pid)) not in wanted and time.monotonic() < deadline:
            time.sleep(0.01)
        return state

    child = subprocess.Popen(["sleep", "30"])
    pid = str(child.pid)
    try:
        # A process just started may be in D for a moment (exec reading its pages from a loaded disk: seen in CI);
        # what matters is that a running one is not frozen, so wait (bounded) until it runs or sleeps.
        assert state_within(pid, ("S", "R")) in ("S", "R") and not frozen(pid)
        os.kill(child.pid, signal.SIGSTOP)
        state_within(pid, ("T",))
        assert frozen(pid)
    finally:
        child.kill()
        child.wait()
    assert proc_state(pid) == "" and not frozen(pid)


def test_network_nodes_guard_the_pacemaker_agents(seed: Topology) -> None:
    from conftest import FixedSecrets
    from hastack.components import pacemaker
    from hastack.components.base import Ctx

    state = desired(Ctx(seed, FixedSecrets(None)))
    for node in seed.nodes:
        files = {f.path: f for f in state[node.name].files}
        if not (node.has("network") or node.has("controller")):
            assert api_watchdog.CONF not in files  # a compute node runs no watchdog
            continue
        conf = json.loads(files[api_watchdog.CONF].data)
        if node.has("network"):
            assert not conf["apis"]
            units = [g["unit"] for g in conf["log_guards"]]
            assert sorted(units) == sorted(pacemaker.AGENT_UNITS)
            assert {(g["via"], g["text"], g["log"]) for g in conf["log_guards"]} == {
                ("pacemaker", api_watchdog.AGENT_GAVE_UP, f"/var/log/neutron/{u}.log") for u in units}
            assert conf["frozen"] == [{"unit": u, "via": "pacemaker"} for u in units]
            assert api_watchdog.UNIT in state[node.name].units
        else:
            assert conf["apis"] and not conf["frozen"]
            assert all(g["via"] == "systemd" for g in conf["log_guards"])


def test_the_pacemaker_resource_is_the_unit_name() -> None:
    """`fail` names the resource by the guarded unit: the group's primitives carry their unit's name."""
    from hastack.components import pacemaker

    assert all(pacemaker.agent_id(u) == u for u in pacemaker.AGENT_UNITS)


def test_the_hold_acts_once_per_run_of_a_unit() -> None:
    """Pacemaker takes seconds to stop and start a group member: reporting the same run failed again
    meanwhile would push its fail count to migration-threshold and move the group for one fault."""
    from hastack.agents.api_watchdog import Hold

    h = Hold(hold_s=120)
    assert h.allows("dhcp", "100", 0.0)
    h.record("dhcp", "100", 0.0)
    assert not h.allows("dhcp", "100", 5.0) and not h.allows("dhcp", "100", 119.9)
    assert h.allows("dhcp", "200", 6.0)  # a new run: watched again at once
    assert h.allows("dhcp", "100", 120.0)  # nothing happened in time: act again
    assert h.allows("l3", "100", 1.0)


def test_heartbeat_ages_parse_and_the_silent_agent_is_the_one_whose_peers_report() -> None:
    from hastack.agents.api_watchdog import parse_ages, silent_agents

    ages = parse_ages("neutron-dhcp-agent\t412\nneutron-l3-agent\t12\nneutron-metadata-agent\t-1\n"
                      "garbage line\nneutron-linuxbridge-agent\tNULL\n")
    assert ages == {"neutron-dhcp-agent": 412, "neutron-l3-agent": 12, "neutron-metadata-agent": -1}
    running: dict[str, float | None] = {"neutron-dhcp-agent": 900.0, "neutron-l3-agent": 900.0,
                                        "neutron-metadata-agent": 900.0}
    assert silent_agents(ages, running, 100, 60, 180) == [("neutron-dhcp-agent", 412)]
    # every agent silent: the controllers or the brokers are away, a restart cannot help
    assert silent_agents({k: 412 for k in ages}, running, 100, 60, 180) == []
    # not running here (the other node runs the group), or within its start grace: left alone
    assert silent_agents(ages, {**running, "neutron-dhcp-agent": None}, 100, 60, 180) == []
    assert silent_agents(ages, {**running, "neutron-dhcp-agent": 179.0}, 100, 60, 180) == []
    # never registered: nothing to compare
    assert silent_agents({"neutron-l3-agent": 5}, running, 100, 60, 180) == []
    assert silent_agents({**ages, "neutron-dhcp-agent": 100}, running, 100, 60, 180) == []  # not past stale_s


def test_the_watch_account_reads_three_columns_and_its_password_stays_root_only(seed: Topology) -> None:
    from conftest import FixedSecrets
    from hastack.components.base import Ctx

    ctx = Ctx(seed, FixedSecrets(None))
    state = desired(ctx)
    pw = ctx.secrets.password(api_watchdog.WATCH_SECRET)
    for node in seed.nodes:
        files = {f.path: f for f in state[node.name].files}
        if not node.has("network"):
            assert api_watchdog.WATCH_CNF not in files
            continue
        cnf = files[api_watchdog.WATCH_CNF]
        assert cnf.mode == 0o600 and cnf.secret and f"password={pw}\n" in cnf.data.decode()
        assert f"host={seed.network.vip}\n" in cnf.data.decode()
        conf = json.loads(files[api_watchdog.CONF].data)
        assert pw not in files[api_watchdog.CONF].data.decode()  # the 0644 config names the file, not the password
        beats = conf["heartbeats"]
        assert beats["defaults"] == api_watchdog.WATCH_CNF and beats["units"] == [g["unit"] for g in conf["frozen"]]
        assert beats["query"].endswith(f"WHERE host = '{seed.openstack.agent_host}'")
        assert "mariadb-client" in api_watchdog.COMPONENT.packages(seed, node)
    sql = api_watchdog.watch_grant_sql("p'w")
    assert "GRANT SELECT (`binary`, `host`, `heartbeat_timestamp`) ON `neutron`.`agents` TO " \
           "'hastack_agentwatch'@'%';" in sql
    assert "IDENTIFIED BY 'p''w'" in sql and "ALL" not in sql
    # the identity is a DNS name the model checked; quoted again all the same
    hostile = seed.model_copy(update={"openstack": seed.openstack.model_copy(update={"agent_host": "a'b"})})
    assert api_watchdog.heartbeat_query(hostile).endswith("WHERE host = 'a''b'")
