"""The status bundle: the real script, run on this machine, against real (local) sockets and commands."""

from __future__ import annotations

import asyncio
import base64
import http.server
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hastack.facts import show_stat
from hastack.status.bundle import (
    BUNDLE_ARGV,
    NO_PYTHON_EXIT,
    Task,
    budget,
    parse_bundle,
    run_bundle,
    stdin_of,
)
from hastack.transport.base import HostError, Result
from hastack.transport.fake import Script, on_prefix
from hastack.transport.local import LocalTransport

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="runs python3 and unix sockets")


def test_commands_run_in_parallel_each_with_its_answer() -> None:
    tasks = [Task("a", "run", 5, argv=("sh", "-c", "sleep 0.4; echo one")),
             Task("b", "run", 5, argv=("sh", "-c", "sleep 0.4; echo two >&2; exit 3"))]
    t0 = time.monotonic()
    out = asyncio.run(run_bundle(LocalTransport(), tasks))
    assert time.monotonic() - t0 < 1.5  # not 0.8 + start-up one after the other
    assert (out["a"].result.exit_status, out["a"].result.stdout) == (0, "one\n")
    assert (out["b"].result.exit_status, out["b"].result.stderr) == (3, "two\n")
    assert out["a"].result.argv == tasks[0].argv and not out["a"].timed_out


def test_a_hung_command_is_killed_and_the_others_still_answer() -> None:
    tasks = [Task("slow", "run", 0.3, argv=("sh", "-c", "sleep 30 & sleep 30")),
             Task("fast", "run", 2, argv=("echo", "ok"))]
    t0 = time.monotonic()
    out = asyncio.run(run_bundle(LocalTransport(), tasks))
    assert time.monotonic() - t0 < 3
    assert out["slow"].timed_out and out["slow"].result.exit_status == 124
    assert out["fast"].result.stdout == "ok\n"


def test_a_missing_program_is_exit_127() -> None:
    out = asyncio.run(run_bundle(LocalTransport(), [Task("x", "run", 2, argv=("no-such-program-here",))]))
    assert out["x"].result.exit_status == 127 and "no-such-program-here" in out["x"].result.stderr


@pytest.fixture
def tcp_server() -> Iterator[int]:
    """A memcached-like server: answers `stats` with two lines and END."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.recv(100)
            conn.sendall(b"STAT pid 42\r\nSTAT uptime 7\r\nEND\r\n")
            time.sleep(1)  # keeps the connection open: the reader must stop at END, not at EOF

    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1]
    srv.close()


def test_tcp_reads_until_the_end_marker(tcp_server: int) -> None:
    t = Task("m", "tcp", 2, host="127.0.0.1", port=tcp_server, send="stats\r\n", until="END\r\n")
    t0 = time.monotonic()
    out = asyncio.run(run_bundle(LocalTransport(), [t]))
    assert time.monotonic() - t0 < 0.9
    assert out["m"].result.exit_status == 0 and "STAT pid 42" in out["m"].result.stdout


def test_tcp_refused_is_exit_2() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    out = asyncio.run(run_bundle(LocalTransport(), [Task("m", "tcp", 2, host="127.0.0.1", port=port, send="x")]))
    assert out["m"].result.exit_status == 2 and "refused" in out["m"].result.stderr.lower()


def test_unix_socket_answers_like_the_show_stat_fact(tmp_path: Path) -> None:
    path = str(tmp_path / "admin.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen()

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            assert conn.recv(100) == b"show stat\n"
            conn.sendall(b"# pxname,svname,status,type\ngalera,ctl-1,UP,2\n")

    threading.Thread(target=serve, daemon=True).start()
    fact = show_stat(path)
    t = Task("haproxy", "unix", 2, path=path, send="show stat\n", shown_as=fact.argv)
    out = asyncio.run(run_bundle(LocalTransport(), [t]))
    stats = fact.parse(out["haproxy"].result)
    assert out["haproxy"].result.argv == fact.argv
    assert stats.available and stats.up_servers("galera") == ("ctl-1",)
    srv.close()


def test_unix_socket_nobody_listening_is_the_facts_not_running(tmp_path: Path) -> None:
    fact = show_stat(str(tmp_path / "none.sock"))
    t = Task("haproxy", "unix", 2, path=str(tmp_path / "none.sock"), send="show stat\n", shown_as=fact.argv)
    out = asyncio.run(run_bundle(LocalTransport(), [t]))
    stats = fact.parse(out["haproxy"].result)
    assert not stats.available and "cannot connect" in stats.error


class _Api(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        want = "Basic " + base64.b64encode(b"hastack:pw").decode()
        if self.headers.get("Authorization") != want:
            self.send_response(401)
            self.end_headers()
            return
        code, body = (200, b'[{"name":"rabbit@ctl-1"}]') if self.path.startswith("/api/nodes") else \
            (503, b'{"status":"failed","alarms":[{"node":"rabbit@ctl-1","resource":"memory"}]}')
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()


def test_http_with_basic_auth_and_the_body_of_an_error(api: int) -> None:
    base = f"http://127.0.0.1:{api}/api"
    tasks = [Task("ok", "http", 2, url=f"{base}/nodes?columns=name", auth=("hastack", "pw")),
             Task("alarm", "http", 2, url=f"{base}/health/checks/alarms", auth=("hastack", "pw")),
             Task("denied", "http", 2, url=f"{base}/nodes", auth=("hastack", "wrong"))]
    out = asyncio.run(run_bundle(LocalTransport(), tasks))
    assert (out["ok"].result.exit_status, json.loads(out["ok"].result.stdout)) == (0, [{"name": "rabbit@ctl-1"}])
    assert out["alarm"].result.exit_status == 1 and "memory" in out["alarm"].result.stdout
    assert "503" in out["alarm"].result.stderr
    assert out["denied"].result.exit_status == 1 and "401" in out["denied"].result.stderr
    assert out["ok"].result.argv == ("GET", f"{base}/nodes?columns=name")


def test_credentials_travel_on_stdin_never_in_the_argv() -> None:
    t = Task("x", "http", 1, url="http://10.0.0.1:15672/api/nodes", auth=("hastack", "s3cret"))
    assert "s3cret" not in " ".join(BUNDLE_ARGV) and "s3cret" not in repr(t)
    assert "s3cret" in stdin_of([t]).decode()
    assert "s3cret" not in " ".join(t.shown)


def test_budget_is_the_slowest_task_plus_start_up() -> None:
    assert budget([Task("a", "run", 4, argv=("true",)), Task("b", "run", 2, argv=("true",))]) == 4.5
    assert budget([]) == 0.5


def test_without_python3_the_commands_run_one_by_one() -> None:
    script = Script(
        on_prefix("python3", "-S", "-c", exit_status=NO_PYTHON_EXIT, stderr="sh: 1: python3: not found\n"),
        on_prefix("echo", stdout="hello\n"),
    )
    tasks = [Task("a", "run", 2, argv=("echo", "hello")), Task("m", "tcp", 2, host="h", port=1, send="x")]
    out = asyncio.run(run_bundle(script.transport("ctl-1"), tasks))
    assert out["a"].result.stdout == "hello\n"
    assert out["m"].result.exit_status == NO_PYTHON_EXIT and "python3" in out["m"].result.stderr
    script.assert_done()


def test_a_failing_probe_is_a_host_error() -> None:
    script = Script(on_prefix("python3", exit_status=1, stderr="Traceback: boom\n"))
    with pytest.raises(HostError, match="probe failed"):
        asyncio.run(run_bundle(script.transport("ctl-1"), [Task("a", "run", 1, argv=("true",))]))


def test_parse_bundle_rejects_other_documents() -> None:
    t = [Task("a", "run", 1, argv=("true",))]
    with pytest.raises(ValueError):
        parse_bundle("h", t, json.dumps({"v": 2, "results": {}}))
    with pytest.raises(ValueError, match="no answer for task a"):
        parse_bundle("h", t, json.dumps({"v": 1, "results": {}}))
    sections = parse_bundle("h", t, json.dumps({"v": 1, "results": {"a": {"exit": 0, "out": "x", "ms": 12}}}))
    assert sections["a"].result == Result("h", ("true",), 0, "x", "") and sections["a"].seconds == 0.012


def test_the_script_needs_only_the_standard_library() -> None:
    """-S (no site-packages): run it with an empty task list under an isolated interpreter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    res = asyncio.run(LocalTransport(env=env).run(BUNDLE_ARGV, stdin=stdin_of([])))
    assert res.exit_status == 0 and json.loads(res.stdout) == {"v": 1, "results": {}}
