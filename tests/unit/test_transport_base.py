"""Result, CommandError rendering, and the validation of put's arguments."""

from __future__ import annotations

import pytest

from hastack.transport.base import CommandError, CommandTimeout, Result, put_argv


def result(out: str = "", err: str = "", status: int = 1) -> Result:
    return Result("ctl-2", ("mariadb", "-N", "-e", "SELECT 1; -- it's"), status, out, err)


def test_result_ok_and_command_quoting() -> None:
    assert Result("h", ("true",), 0, "", "").ok
    r = result()
    assert not r.ok
    assert r.command == "mariadb -N -e 'SELECT 1; -- it'\"'\"'s'"


def test_tail_is_the_last_lines_of_stdout_then_stderr() -> None:
    r = result("\n".join(f"out {i}" for i in range(30)) + "\n", "err 1\nerr 2\n")
    assert r.tail(3).splitlines() == ["out 29", "err 1", "err 2"]
    assert len(r.tail().splitlines()) == 20
    assert result().tail() == ""
    assert result("a\n").tail(0) == ""


def test_command_error_names_host_command_exit_code_and_tail() -> None:
    err = CommandError(result("line one\nline two\n", "ERROR 2002 (HY000): Can't connect\n", 1))
    text = str(err)
    assert text.startswith("ctl-2: `mariadb -N -e ")
    assert "exit code 1" in text
    assert "| line two" in text and "| ERROR 2002 (HY000): Can't connect" in text
    assert err.result.exit_status == 1 and err.host == "ctl-2"


def test_command_error_without_output_says_so() -> None:
    assert "(no output)" in str(CommandError(result()))


def test_result_check() -> None:
    ok = Result("h", ("true",), 0, "", "")
    assert ok.check() is ok
    with pytest.raises(CommandError):
        result().check()


def test_put_data_never_appears_in_errors() -> None:
    """Secrets travel as put data (stdin): the put argv and its errors carry path and attributes only."""
    secret = "s3cr3t-password"
    argv = put_argv("/etc/keystone/keystone.conf", len(secret), owner="root", group="keystone", mode=0o640)
    assert secret not in " ".join(argv)
    err = CommandError(Result("ctl-1", tuple(argv), 1, "", "chown: invalid group: 'root:keystone'\n"))
    assert secret not in str(err) and "/etc/keystone/keystone.conf" in str(err)


def test_command_timeout_renders_partial_output() -> None:
    text = str(CommandTimeout("ctl-1", ["sleep", "10"], 1.5, "started\n"))
    assert text == "ctl-1: `sleep 10` did not finish within 1.5s\n    | started"


@pytest.mark.parametrize("path, owner, group, mode", [
    ("relative/path", "root", "root", 0o644),
    ("/etc/dir/", "root", "root", 0o644),
    ("/etc/x", "root; rm -rf /", "root", 0o644),
    ("/etc/x", "root", "Bad Group", 0o644),
    ("/etc/x", "root", "root", 0o17777),
])
def test_put_argv_rejects_bad_values(path: str, owner: str, group: str, mode: int) -> None:
    with pytest.raises(ValueError):
        put_argv(path, 1, owner=owner, group=group, mode=mode)


def test_put_argv_passes_values_as_arguments_not_shell() -> None:
    argv = put_argv("/etc/a b/$(x)", 3, owner="hacluster", group="haclient", mode=0o640)
    assert argv[:2] == ["sh", "-c"] and argv[3:] == ["sh", "/etc/a b/$(x)", "hacluster", "haclient", "0640", "3"]


def test_put_argv_takes_an_absolute_staging_directory_as_one_argument() -> None:
    argv = put_argv("/etc/keystone/fernet-keys/0", 44, owner="keystone", group="keystone", mode=0o600,
                    stage_dir="/etc/keystone")
    assert argv[-2:] == ["44", "/etc/keystone"]
    assert put_argv("/etc/x", 1, owner="root", group="root", mode=0o644)[-1] == "1"
    for bad in ("etc/keystone", "/etc/\0x"):
        with pytest.raises(ValueError):
            put_argv("/etc/x", 1, owner="root", group="root", mode=0o644, stage_dir=bad)
