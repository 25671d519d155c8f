"""File facts: the many-paths state script (recorded, and run for real locally) and read_text."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest
from recordings import answer, load

from hastack.facts import FactError, FileState, file_state, gather, read_text, render_file_state
from hastack.facts.files import parse_file_state
from hastack.transport.fake import Script, on_fact
from hastack.transport.local import LocalTransport

PATHS = ["/etc/haproxy/haproxy.cfg", "/etc/mysql/my.cnf", "/var/lib/pacemaker", "/etc/corosync/authkey",
         "/etc/rabbitmq/rabbitmq-env.conf", "/etc/keystone/keystone.conf"]


def test_recorded_mixed_states() -> None:
    states = answer(file_state(PATHS), "files", "file_state-mixed")
    assert list(states) == PATHS
    cfg = states["/etc/haproxy/haproxy.cfg"]
    assert (cfg.exists, cfg.owner, cfg.group, cfg.mode, cfg.kind) == (True, "root", "root", 0o644, "regular file")
    assert cfg.sha256 == "cc8b8c00566915d869d7ffc5f21ad4ade27b40e4845394ee00996f8eb83cad73"
    assert states["/etc/mysql/my.cnf"].kind == "symbolic link" and states["/etc/mysql/my.cnf"].sha256 is None
    assert states["/var/lib/pacemaker"].kind == "directory" and states["/var/lib/pacemaker"].sha256 is None
    assert states["/etc/corosync/authkey"] == FileState("/etc/corosync/authkey", False)
    keystone = states["/etc/keystone/keystone.conf"]
    assert (keystone.group, keystone.mode) == ("keystone", 0o640)
    assert states["/etc/rabbitmq/rabbitmq-env.conf"].owner == "rabbitmq"


def test_the_script_for_real(tmp_path: Path) -> None:
    (tmp_path / "a b").write_bytes(b"hello\n")
    os.chmod(tmp_path / "a b", 0o4750)
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "link").symlink_to(tmp_path / "a b")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    paths = [str(tmp_path / n) for n in ("a b", "empty", "link", "dangling", "missing", "")]
    paths[-1] = str(tmp_path / "$(touch pwned)")
    states = asyncio.run(gather(LocalTransport(), file_state(paths)))
    ab = states[paths[0]]
    assert (ab.mode, ab.kind, ab.sha256) == (0o4750, "regular file", hashlib.sha256(b"hello\n").hexdigest())
    assert states[paths[1]].kind == "regular empty file" and states[paths[1]].sha256 == hashlib.sha256(b"").hexdigest()
    assert states[paths[2]].kind == "symbolic link" and states[paths[2]].sha256 is None
    assert states[paths[3]].exists and states[paths[3]].kind == "symbolic link"
    assert not states[paths[4]].exists and not states[paths[5]].exists
    assert not (tmp_path / "pwned").exists()


def test_render_is_what_the_script_prints() -> None:
    rec = load("files", "file_state-mixed")
    states = answer(file_state(PATHS), "files", "file_state-mixed")
    assert render_file_state(PATHS, states) == rec.stdout


def test_matches_and_of() -> None:
    s = FileState.of("/etc/x", b"data", owner="root", group="nova", mode=0o640)
    assert s.matches(b"data", owner="root", group="nova", mode=0o640)
    assert not s.matches(b"data", owner="root", group="nova", mode=0o644)
    assert not s.matches(b"other", owner="root", group="nova", mode=0o640)
    assert FileState.of("/e", b"").kind == "regular empty file"


def test_a_path_missing_from_the_output_is_an_error() -> None:
    with pytest.raises(ValueError, match="no state reported for /b"):
        parse_file_state(["/a", "/b"], "0\tmissing\n")


def test_relative_paths_are_refused() -> None:
    with pytest.raises(ValueError):
        file_state(["etc/x"])


def test_a_failing_script_is_a_host_error_through_gather() -> None:
    fact = file_state(["/etc/x"])
    script = Script(on_fact(fact, stdout="garbage\n"))
    with pytest.raises(FactError, match="cannot parse the output"):
        asyncio.run(gather(script.transport("ctl-1"), fact))


def test_read_text(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x = 1\n")
    t = LocalTransport()
    assert asyncio.run(gather(t, read_text(str(tmp_path / "f")))) == "x = 1\n"
    assert asyncio.run(gather(t, read_text(str(tmp_path / "missing")))) is None
