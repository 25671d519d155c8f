"""HAProxy 2.6 `show stat` CSV, recorded from a real haproxy; the socket script run for real."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import pytest
from recordings import answer, load

from hastack.facts import gather, show_stat
from hastack.facts.haproxy import parse_show_stat
from hastack.transport.local import LocalTransport


def test_healthy() -> None:
    s = answer(show_stat(), "haproxy", "show_stat-healthy")
    assert s.available
    assert s.up_servers("galera") == ("ctl-1", "ctl-2", "ctl-3") and s.serving("galera") == "ctl-1"
    ctl2 = s.server("galera", "ctl-2")
    assert ctl2 is not None and ctl2.backup and not ctl2.active and ctl2.check_status == "L4OK"
    keystone = s.server("keystone", "ctl-1")
    assert keystone is not None and keystone.check_status == "L7OK" and keystone.fields["check_code"] == "200"
    backend = s.backend("galera")
    assert backend is not None and backend.status == "UP" and backend.type == "backend"
    assert "-" not in backend.fields


def test_writer_down_fails_over_to_the_first_backup() -> None:
    s = answer(show_stat(), "haproxy", "show_stat-writer-down")
    ctl1 = s.server("galera", "ctl-1")
    assert ctl1 is not None and ctl1.status == "DOWN" and ctl1.check_status == "L4CON"
    assert s.serving("galera") == "ctl-2" and s.up_servers("keystone") == ("ctl-2", "ctl-3")


def test_recorded_in_the_lab() -> None:
    s = answer(show_stat(), "haproxy", "lab-keystone-down")
    assert s.up_servers("keystone") == () and s.serving("keystone") is None
    backend = s.backend("keystone")
    assert backend is not None and backend.status == "DOWN"
    assert s.up_servers("galera") == ("ctl-1", "ctl-2", "ctl-3")


def test_not_running_is_an_answer() -> None:
    s = answer(show_stat(), "haproxy", "show_stat-not-running")
    assert load("haproxy", "show_stat-not-running").exit_status == 3
    assert not s.available and "Connection refused" in s.error


def test_transitional_status_and_quoted_fields() -> None:
    text = ('# pxname,svname,status,weight,act,bck,check_status,type,last_chk,\n'
            'galera,ctl-1,UP 1/2,1,1,0,* L4OK,2,"refused, retrying",\n')
    s = parse_show_stat(text)
    row = s.server("galera", "ctl-1")
    assert row is not None and row.up and row.check_status == "L4OK" and row.fields["last_chk"] == "refused, retrying"


def test_garbage_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_show_stat("Unknown command. Please enter one of the following commands only :\n")


def test_the_socket_script_for_real(tmp_path: Path) -> None:
    """A stand-in admin socket: receives `show stat`, answers with a recording, closes."""
    path = str(tmp_path / "admin.sock")
    csv = load("haproxy", "show_stat-healthy").stdout
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        got.append(conn.recv(100))
        conn.sendall(csv.encode())
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    stats = asyncio.run(gather(LocalTransport(), show_stat(path)))
    thread.join(5)
    server.close()
    assert got == [b"show stat\n"] and stats.serving("galera") == "ctl-1"
    missing = asyncio.run(gather(LocalTransport(), show_stat(str(tmp_path / "nope.sock"))))
    assert not missing.available and "No such file or directory" in missing.error


def test_servers_state_names_the_servers_held_out_at_run_time() -> None:
    """Recorded on the lab after `hastack retire ctl-1` and a deploy that started ctl-1 again: its API
    servers still in forced drain in ctl-2's HAProxy, its galera server back."""
    from hastack.facts.haproxy import parse_servers_state, servers_state

    states = answer(servers_state(), "haproxy", "servers_state-drained")
    held = sorted({(s.backend, s.server) for s in states if s.held_out})
    assert held and all(srv == "ctl-1" for _, srv in held)
    assert ("keystone", "ctl-1") in held and ("galera", "ctl-1") not in held
    assert all(s.op_state == 2 for s in states)  # running: `show stat` alone cannot tell DRAIN from a down server
    with pytest.raises(ValueError):
        parse_servers_state("# pxname,svname\n")
