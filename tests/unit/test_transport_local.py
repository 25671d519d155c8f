"""The local transport, for real: commands, stdin, timeouts, and the atomic put/get scripts
(the very scripts the SSH transport sends to nodes)."""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import stat
import time
from pathlib import Path

import pytest

from hastack.transport.base import CommandError, CommandTimeout, put_argv
from hastack.transport.local import LocalTransport

ME = pwd.getpwuid(os.getuid()).pw_name
MY_GROUP = grp.getgrgid(os.getgid()).gr_name


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_exit_statuses() -> None:
    t = LocalTransport("here")
    assert run(t.run(["true"])).exit_status == 0
    assert run(t.run(["false"])).exit_status == 1
    r = run(t.run(["sh", "-c", "echo out; echo err >&2; exit 3"]))
    assert (r.exit_status, r.stdout, r.stderr, r.host, r.argv) == (
        3, "out\n", "err\n", "here", ("sh", "-c", "echo out; echo err >&2; exit 3"))


def test_check_raises_command_error() -> None:
    with pytest.raises(CommandError) as info:
        run(LocalTransport("here").run(["sh", "-c", "echo boom >&2; exit 3"], check=True))
    assert "exit code 3" in str(info.value) and "| boom" in str(info.value)


def test_stdin_is_fed_and_closed() -> None:
    t = LocalTransport()
    assert run(t.run(["cat"], stdin=b"secret\n")).stdout == "secret\n"
    # without stdin the command sees EOF at once instead of waiting (rabbitmqctl reads stdin)
    assert run(t.run(["cat"], timeout=5)).stdout == ""


def test_argv_is_not_parsed_by_a_shell() -> None:
    r = run(LocalTransport().run(["echo", "$(id)", "a;b", "*"]))
    assert r.stdout == "$(id) a;b *\n"


def test_missing_program_is_127_like_a_shell() -> None:
    r = run(LocalTransport().run(["/nonexistent/tool", "x"]))
    assert r.exit_status == 127 and "not found" in r.stderr


def test_c_locale() -> None:
    assert run(LocalTransport().run(["sh", "-c", "echo $LC_ALL"])).stdout == "C\n"


def test_timeout_kills_the_command_and_its_children(tmp_path: Path) -> None:
    marker = tmp_path / "survived"
    start = time.monotonic()
    with pytest.raises(CommandTimeout) as info:
        run(LocalTransport("here").run(["sh", "-c", f"(sleep 0.4; touch {marker}) & sleep 5"], timeout=0.2))
    assert time.monotonic() - start < 2
    assert "did not finish within 0.2s" in str(info.value)
    time.sleep(0.6)
    assert not marker.exists(), "a child of the timed-out command kept running"


def test_put_get_round_trip_with_mode(tmp_path: Path) -> None:
    t = LocalTransport()
    path = tmp_path / "new" / "dir" / "secret.conf"
    run(t.put(str(path), b"password = x\n", owner=ME, group=MY_GROUP, mode=0o640))
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640 and path.read_bytes() == b"password = x\n"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755
    assert run(t.get(str(path))) == b"password = x\n"
    run(t.put(str(path), b"", owner=ME, group=MY_GROUP, mode=0o600))
    assert path.read_bytes() == b"" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret.conf"], "a temp file was left behind"


def test_put_binary_and_large(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096
    run(LocalTransport().put(str(tmp_path / "blob"), data, owner=ME, group=MY_GROUP, mode=0o644))
    assert (tmp_path / "blob").read_bytes() == data


def test_get_missing_is_none(tmp_path: Path) -> None:
    assert run(LocalTransport().get(str(tmp_path / "nope"))) is None


def test_get_of_a_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError):
        run(LocalTransport().get(str(tmp_path)))


def test_put_onto_a_directory_fails_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(CommandError):
        run(LocalTransport().put(str(tmp_path / "d"), b"x", owner=ME, group=MY_GROUP, mode=0o644))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"] and not any((tmp_path / "d").iterdir())


def test_put_with_unknown_owner_fails_and_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"old")
    with pytest.raises(CommandError) as info:
        run(LocalTransport().put(str(path), b"new", owner="no-such-user-x", group=MY_GROUP, mode=0o644))
    assert "no-such-user-x" in str(info.value)
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_truncated_transfer_is_not_installed(tmp_path: Path) -> None:
    """A connection dropped mid-transfer looks like early EOF: the size check refuses it."""
    path = tmp_path / "f"
    path.write_bytes(b"old")
    argv = put_argv(str(path), 10, owner=ME, group=MY_GROUP, mode=0o644)
    r = run(LocalTransport().run(argv, stdin=b"only5"))
    assert r.exit_status != 0 and "short write" in r.stderr
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_content_is_never_readable_by_others_while_written(tmp_path: Path) -> None:
    """Hold stdin open mid-put and look at the temp file: owner-only until the final rename."""
    path = tmp_path / "secret"
    argv = put_argv(str(path), 6, owner=ME, group=MY_GROUP, mode=0o644)

    async def scenario() -> tuple[int, int]:
        proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE)
        assert proc.stdin is not None
        proc.stdin.write(b"sec")
        await proc.stdin.drain()
        temp = None
        for _ in range(200):
            temps = list(tmp_path.glob(".hastack-put.*"))
            if temps and temps[0].stat().st_size == 3:
                temp = temps[0]
                break
            await asyncio.sleep(0.01)
        assert temp is not None, "no temp file seen"
        mode = stat.S_IMODE(temp.stat().st_mode)
        proc.stdin.write(b"ret")
        proc.stdin.close()
        return mode, await proc.wait()

    mode, status = run(scenario())
    assert mode == 0o600 and status == 0
    assert path.read_bytes() == b"secret" and stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_staged_put_never_shows_a_temp_file_in_the_target_directory(tmp_path: Path) -> None:
    """Keystone opens every entry of its key directory: mid-put, the directory holds only what it held
    before, the temp file is in the staging directory, and one rename moves it in."""
    keys, stage = tmp_path / "keys", tmp_path
    keys.mkdir()
    (keys / "0").write_bytes(b"old")
    argv = put_argv(str(keys / "1"), 6, owner=ME, group=MY_GROUP, mode=0o600, stage_dir=str(stage))

    async def scenario() -> tuple[list[str], list[str], int]:
        proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE)
        assert proc.stdin is not None
        proc.stdin.write(b"new")
        await proc.stdin.drain()
        staged: list[str] = []
        for _ in range(200):
            staged = [p.name for p in stage.glob(".hastack-put.*")]
            if staged:
                break
            await asyncio.sleep(0.01)
        inside = sorted(p.name for p in keys.iterdir())
        proc.stdin.write(b"key")
        proc.stdin.close()
        return staged, inside, await proc.wait()

    staged, inside, status = run(scenario())
    assert staged and inside == ["0"] and status == 0
    assert sorted(p.name for p in keys.iterdir()) == ["0", "1"] and (keys / "1").read_bytes() == b"newkey"
    assert not list(stage.glob(".hastack-put.*"))


def test_a_missing_staging_directory_fails_and_installs_nothing(tmp_path: Path) -> None:
    with pytest.raises(CommandError) as info:
        run(LocalTransport().put(str(tmp_path / "f"), b"x", owner=ME, group=MY_GROUP, mode=0o644,
                                 stage_dir=str(tmp_path / "absent")))
    assert "absent" in str(info.value) and not (tmp_path / "f").exists()
