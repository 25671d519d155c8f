"""The scripted fake: answers what it was told, records everything, fails loudly on the unexpected."""

from __future__ import annotations

import asyncio

import pytest

from hastack.facts import Fact, galera_status, gather
from hastack.transport.base import CommandError, HostUnreachable
from hastack.transport.fake import Script, on, on_fact, on_prefix, on_regex


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_exact_prefix_regex_and_per_host_answers() -> None:
    script = Script(
        on("systemctl", "is-active", "mariadb", stdout="active\n", host="ctl-1"),
        on("systemctl", "is-active", "mariadb", stdout="failed\n", exit_status=3, host="ctl-2"),
        on_prefix("crm_mon", stdout="<xml/>"),
        on_regex(r"^mariadb .*wsrep_cluster_size", stdout="wsrep_cluster_size\t3\n"),
    )
    t1, t2 = script.transport("ctl-1"), script.transport("ctl-2")
    assert run(t1.run(["systemctl", "is-active", "mariadb"])).stdout == "active\n"
    r = run(t2.run(["systemctl", "is-active", "mariadb"]))
    assert (r.exit_status, r.stdout, r.host) == (3, "failed\n", "ctl-2")
    assert run(t2.run(["crm_mon", "--output-as=xml"])).stdout == "<xml/>"
    assert run(t1.run(["mariadb", "-e", "SHOW STATUS LIKE 'wsrep_cluster_size'"])).stdout.endswith("3\n")
    script.assert_done()
    assert script.runs("ctl-2") == [("systemctl", "is-active", "mariadb"), ("crm_mon", "--output-as=xml")]


def test_unexpected_call_fails_with_argv_and_what_is_left() -> None:
    script = Script(on("true", host="ctl-1"), on_prefix("crm_mon"))
    with pytest.raises(AssertionError) as info:
        run(script.transport("ctl-1").run(["rm", "-rf", "/var/lib/mysql"]))
    text = str(info.value)
    assert "unexpected call on ctl-1: rm -rf /var/lib/mysql" in text
    assert "[ctl-1] exact true (used 0 of 1)" in text and "[any host] prefix crm_mon" in text
    assert script.runs() == [("rm", "-rf", "/var/lib/mysql")], "the unexpected call is still recorded"


def test_an_expectation_is_used_up_unless_standing() -> None:
    script = Script(on("date", stdout="1\n"), on("uptime", times=None))
    t = script.transport("h")
    run(t.run(["date"]))
    for _ in range(3):
        run(t.run(["uptime"]))
    with pytest.raises(AssertionError):
        run(t.run(["date"]))


def test_assert_done_lists_expectations_never_met() -> None:
    script = Script(on("a"), on("b", times=2))
    run(script.transport("h").run(["b"]))
    with pytest.raises(AssertionError) as info:
        script.assert_done()
    assert "exact a (used 0 of 1)" in str(info.value) and "exact b (used 1 of 2)" in str(info.value)


def test_ordered_script() -> None:
    script = Script(on("first"), on("second"), on("poll", times=None), ordered=True)
    t = script.transport("h")
    with pytest.raises(AssertionError) as info:
        run(t.run(["second"]))
    assert "next in order" in str(info.value)
    script = Script(on("first"), on("second"), on("poll", times=None), ordered=True)
    t = script.transport("h")
    for argv in (["poll"], ["first"], ["poll"], ["second"]):
        run(t.run(argv))
    script.assert_done()


def test_check_raises_and_raises_option() -> None:
    down = HostUnreachable("ctl-3", "connection refused")
    script = Script(on("false", exit_status=1, stderr="nope\n"), on("ping", raises=down))
    t = script.transport("ctl-3")
    with pytest.raises(CommandError):
        run(t.run(["false"], check=True))
    with pytest.raises(HostUnreachable):
        run(t.run(["ping"]))


def test_argv_must_be_a_list() -> None:
    with pytest.raises(TypeError):
        run(Script().transport("h").run("rm -rf /"))  # type: ignore[arg-type]


def test_put_get_in_memory_and_recorded() -> None:
    script = Script().file("ctl-1", "/etc/old", "before")
    t = script.transport("ctl-1")
    assert run(t.get("/etc/old")) == b"before"
    assert run(t.get("/etc/missing")) is None
    run(t.put("/etc/new.conf", b"x = 1\n", owner="root", group="nova", mode=0o640))
    assert run(t.get("/etc/new.conf")) == b"x = 1\n"
    assert run(script.transport("ctl-2").get("/etc/new.conf")) is None, "files are per host"
    (put,) = script.puts("ctl-1")
    assert (put.path, put.owner, put.group, put.mode, put.data) == ("/etc/new.conf", "root", "nova", 0o640, b"x = 1\n")
    assert [c.kind for c in script.calls] == ["get", "get", "put", "get", "get"]


def test_put_validates_like_the_real_thing() -> None:
    with pytest.raises(ValueError):
        run(Script().transport("h").put("relative", b"", owner="root", group="root", mode=0o644))


def test_unreachable_host() -> None:
    script = Script(on("true", times=None)).unreachable("ctl-2", "no route to host")
    assert run(script.transport("ctl-1").run(["true"])).ok
    with pytest.raises(HostUnreachable, match="ctl-2: no route to host"):
        run(script.transport("ctl-2").run(["true"]))
    with pytest.raises(HostUnreachable):
        run(script.transport("ctl-2").put("/x", b"", owner="root", group="root", mode=0o644))


def test_scripting_a_fact() -> None:
    fact = galera_status()
    script = Script(on_fact(fact, host="ctl-1", stdout="wsrep_cluster_size\t3\nwsrep_cluster_status\tPrimary\n"))
    status = run(gather(script.transport("ctl-1"), fact))
    assert status.cluster_size == 3 and status.primary


def test_any_object_with_argv_scripts_a_fact() -> None:
    fact = Fact("echo", ("echo", "hi"), lambda r: r.stdout.strip())
    script = Script(on_fact(fact, stdout="hi\n"))
    assert run(gather(script.transport("h"), fact)) == "hi"


def test_file_state_served_from_what_was_put() -> None:
    from hastack.facts import FileState, file_state

    script = Script().serve_file_state()
    t = script.transport("ctl-1")

    async def go() -> dict[str, FileState]:
        await t.put("/etc/a.conf", b"a\n", owner="root", group="nova", mode=0o640)
        return await gather(t, file_state(["/etc/a.conf", "/etc/b.conf"]))

    states = run(go())
    assert states["/etc/a.conf"].matches(b"a\n", owner="root", group="nova", mode=0o640)
    assert not states["/etc/b.conf"].exists


def test_respond_computes_the_answer() -> None:
    from hastack.transport.base import Result

    def echo(host: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        return Result(host, argv, 0, " ".join(argv[1:]), "")

    script = Script(on_prefix("echo", times=None, respond=echo))
    assert run(script.transport("h").run(["echo", "a", "b"])).stdout == "a b"
