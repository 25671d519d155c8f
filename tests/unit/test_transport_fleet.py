"""run_all: one outcome per host, partial failure visible, no hang, bounded parallelism."""

from __future__ import annotations

import asyncio
import time

import pytest

from hastack.transport.base import CommandError, HostError, HostUnreachable, Result, Transport
from hastack.transport.fake import FakeTransport, Script, on
from hastack.transport.fleet import Fleet, Unreachable, run_all, unreachable


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_partial_failure_keeps_every_host() -> None:
    script = Script(
        on("uptime", host="ctl-1", stdout="up 3 days\n"),
        on("uptime", host="ctl-2", exit_status=1, stderr="boom\n"),
        on("uptime", host="ctl-4", stdout="late\n", delay=5.0),
    ).unreachable("ctl-3", "connection refused")
    transports = script.fleet("ctl-1", "ctl-2", "ctl-3", "ctl-4")
    start = time.monotonic()
    results = run(run_all(transports, ["uptime"], timeout=0.2, check=True))
    assert time.monotonic() - start < 3, "a silent host must not hang the call"
    assert list(results) == ["ctl-1", "ctl-2", "ctl-3", "ctl-4"]
    assert not results.ok
    assert results.succeeded() == {"ctl-1": Result("ctl-1", ("uptime",), 0, "up 3 days\n", "")}
    errors = results.errors()
    assert isinstance(errors["ctl-2"], CommandError) and errors["ctl-2"].result.exit_status == 1
    assert isinstance(errors["ctl-3"], HostUnreachable)
    assert "`uptime` did not finish within 0.2s" in str(errors["ctl-4"])
    assert results["ctl-1"].unwrap().stdout == "up 3 days\n"
    with pytest.raises(CommandError):
        results["ctl-2"].unwrap()


def test_a_host_that_never_answers_a_callable_is_cut_off() -> None:
    async def hang(t: Transport) -> None:
        await asyncio.sleep(30)

    start = time.monotonic()
    results = run(run_all(Script().fleet("a"), hang, timeout=0.1))
    assert time.monotonic() - start < 1
    assert str(results.errors()["a"]) == "a: no answer within 0.1s"


def test_without_check_a_failed_command_is_a_result() -> None:
    script = Script(on("false", exit_status=1, times=None))
    results = run(run_all(script.fleet("a", "b"), ["false"]))
    assert results.ok and all(not r.ok for r in results.succeeded().values())


def test_callable_action() -> None:
    script = Script(on("hostname", times=None, stdout="x\n"))

    async def both(t: Transport) -> str:
        r = await t.run(["hostname"])
        await t.put("/etc/motd", r.stdout.encode(), owner="root", group="root", mode=0o644)
        return t.host

    results = run(run_all(script.fleet("a", "b"), both))
    assert results.succeeded() == {"a": "a", "b": "b"}
    assert [c.path for c in script.puts()] == ["/etc/motd", "/etc/motd"]


def test_a_bug_is_not_swallowed_and_the_rest_is_cancelled() -> None:
    script = Script(on("slow", host="b", delay=5.0))
    start = time.monotonic()
    with pytest.raises(AssertionError, match="unexpected call on a"):
        run(run_all(script.fleet("a", "b"), ["slow"]))
    assert time.monotonic() - start < 2


def test_max_parallel_is_respected() -> None:
    live = peak = 0

    async def work(t: Transport) -> None:
        nonlocal live, peak
        live += 1
        peak = max(peak, live)
        await asyncio.sleep(0.02)
        live -= 1

    transports = {f"n{i}": FakeTransport(f"n{i}", Script()) for i in range(10)}
    results = run(run_all(transports, work, max_parallel=3))
    assert results.ok and peak == 3


def test_string_argv_is_refused() -> None:
    with pytest.raises(ValueError):
        run(run_all(Script().fleet("a"), "uptime"))


def test_empty() -> None:
    assert run(run_all({}, ["true"])) == {}


def test_unreachable_transport_and_fleet() -> None:
    script = Script(on("true", times=None))
    down = Unreachable(HostUnreachable("ctl-3", "did not answer within 5s"))
    fleet = Fleet({**script.fleet("ctl-1", "ctl-2"), "ctl-3": down}, max_parallel=2)
    assert list(fleet.unreachable) == ["ctl-3"] and unreachable(fleet.transports) == fleet.unreachable

    async def go() -> None:
        async with fleet:
            results = await fleet.run_all(["true"])
            assert list(results.errors()) == ["ctl-3"]
            only = await fleet.run_all(["true"], names=["ctl-2"])
            assert list(only) == ["ctl-2"]
        assert all(t.closed for t in fleet.transports.values() if isinstance(t, FakeTransport))

    run(go())
    with pytest.raises(HostError):
        run(down.get("/etc/hosts"))


def test_unreachable_connects_again_after_a_pause_and_then_stays_connected() -> None:
    """A node still booting when the command started: refused first, reached later (recover after a
    full power loss), at most one new attempt per `retry_after` s while it stays down."""
    now = [0.0]
    script = Script(on("true", host="ctl-3", times=None))
    attempts: list[float] = []
    up = [False]
    made: list[FakeTransport] = []

    async def reconnect() -> Transport:
        attempts.append(now[0])
        if not up[0]:
            raise HostUnreachable("ctl-3", f"connection refused (attempt {len(attempts)})")
        made.append(script.transport("ctl-3"))
        return made[-1]

    down = Unreachable(HostUnreachable("ctl-3", "connection refused"), reconnect, retry_after=5.0,
                       clock=lambda: now[0])

    async def go() -> None:
        with pytest.raises(HostUnreachable, match="connection refused$"):
            await down.run(["true"])  # too soon: the first error, no new attempt
        now[0] = 5.0
        with pytest.raises(HostUnreachable, match="attempt 1"):
            await down.run(["true"])
        now[0] = 7.0
        with pytest.raises(HostUnreachable, match="attempt 1"):
            await down.run(["true"])  # 2 s after the last attempt: cached
        up[0] = True
        now[0] = 10.0
        assert (await down.run(["true"])).exit_status == 0
        now[0] = 10.1
        assert (await down.run(["true"])).exit_status == 0  # the same connection, no new attempt
        await down.close()

    run(go())
    assert attempts == [5.0, 10.0]
    assert len(made) == 1 and made[0].closed


def test_cancelling_run_all_cancels_every_host() -> None:
    finished: list[str] = []

    async def slow(t: Transport) -> None:
        await asyncio.sleep(0.2)
        finished.append(t.host)

    async def go() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(run_all(Script().fleet("a", "b"), slow), 0.05)
        await asyncio.sleep(0.3)

    run(go())
    assert finished == []


def test_a_timeout_inside_the_action_is_that_hosts_error() -> None:
    async def inner(t: Transport) -> None:
        await asyncio.wait_for(asyncio.sleep(1), 0.01)

    results = run(run_all(Script().fleet("a"), inner))
    assert str(results.errors()["a"]) == "a: timed out"
