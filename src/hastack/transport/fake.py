"""A scripted transport for tests: expected commands in, canned results out, everything recorded.

    script = Script(
        on("systemctl", "is-active", "mariadb", stdout="active\\n"),
        on_prefix("crm_mon", host="net-1", stdout=recorded_xml),
        on_fact(galera_status(), stdout=text, host="ctl-1"),
    )
    transports = script.fleet("ctl-1", "ctl-2")
    ...
    assert script.runs("ctl-1") == [("systemctl", "is-active", "mariadb")]
    script.assert_done()

Any call that no expectation matches raises AssertionError at once, naming the argv and the
expectations left, so a test cannot pass by accident. Every call (run, put, get) is recorded
in order across hosts. `put` writes to an in-memory file system that `get` reads back.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypedDict, Unpack

from hastack.transport.base import CommandTimeout, HostUnreachable, Result, put_argv


class _HasArgv(Protocol):
    @property
    def argv(self) -> tuple[str, ...]: ...


@dataclass
class Expect:
    """One expected call and its canned answer.

    `kind` says how `pattern` matches an argv: "exact", "prefix" or "regex" (re.search on the
    shlex-joined command). `host` None matches any host. `times` None answers any number of
    calls; otherwise the expectation must be used exactly that often (see Script.assert_done).
    """

    kind: Literal["exact", "prefix", "regex"]
    pattern: tuple[str, ...] | str
    host: str | None = None
    stdout: str = ""
    stderr: str = ""
    exit_status: int = 0
    raises: BaseException | None = None
    delay: float = 0.0
    times: int | None = 1
    respond: Callable[[str, tuple[str, ...], bytes | None], Result] | None = None
    """Computes the answer at call time (host, argv, stdin) instead of the canned fields."""
    used: int = 0

    def matches(self, host: str, argv: tuple[str, ...]) -> bool:
        if self.host is not None and self.host != host:
            return False
        if self.kind == "exact":
            return argv == self.pattern
        if self.kind == "prefix":
            return argv[: len(self.pattern)] == self.pattern
        return re.search(str(self.pattern), shlex.join(argv)) is not None

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.used >= self.times

    def describe(self) -> str:
        what = shlex.join(self.pattern) if isinstance(self.pattern, tuple) else f"/{self.pattern}/"
        count = "any number of times" if self.times is None else f"used {self.used} of {self.times}"
        return f"[{self.host or 'any host'}] {self.kind} {what} ({count})"


class Answer(TypedDict, total=False):
    """The keyword arguments every `on*` helper takes (see Expect)."""

    host: str | None
    stdout: str
    stderr: str
    exit_status: int
    raises: BaseException | None
    delay: float
    times: int | None
    respond: Callable[[str, tuple[str, ...], bytes | None], Result] | None


def on(*argv: str, **answer: Unpack[Answer]) -> Expect:
    """Expect exactly this argv."""
    return Expect("exact", tuple(argv), **answer)


def on_prefix(*prefix: str, **answer: Unpack[Answer]) -> Expect:
    """Expect an argv that starts with these arguments."""
    return Expect("prefix", tuple(prefix), **answer)


def on_regex(pattern: str, **answer: Unpack[Answer]) -> Expect:
    """Expect a command whose shlex-joined form contains a match of `pattern`."""
    return Expect("regex", pattern, **answer)


def on_fact(fact: _HasArgv, **answer: Unpack[Answer]) -> Expect:
    """Expect a fact's command (any object with an `argv`, e.g. a hastack.facts.Fact)."""
    return Expect("exact", tuple(fact.argv), **answer)


@dataclass(frozen=True)
class Call:
    """One recorded call. For `put`, `data` is what would have been written."""

    host: str
    kind: Literal["run", "put", "get"]
    argv: tuple[str, ...] = ()
    stdin: bytes | None = None
    path: str = ""
    data: bytes | None = None
    owner: str = ""
    group: str = ""
    mode: int = 0
    stage_dir: str | None = None


@dataclass(frozen=True)
class FakeFile:
    data: bytes
    owner: str = "root"
    group: str = "root"
    mode: int = 0o644


class Script:
    """The expectations shared by every fake host of a test, and the record of every call.

    `ordered=True`: counted expectations must be met in the order given (expectations with
    `times=None` may still answer at any point). Concurrent calls from `run_all` reach the
    script in no fixed order, so keep ordered scripts to sequential code.
    """

    def __init__(self, *expects: Expect, ordered: bool = False):
        self.expects: list[Expect] = list(expects)
        self.ordered = ordered
        self.calls: list[Call] = []
        self.files: dict[tuple[str, str], FakeFile] = {}
        self.down: dict[str, str] = {}

    # -- building ---------------------------------------------------------------------------
    def add(self, *expects: Expect) -> Script:
        self.expects.extend(expects)
        return self

    def file(self, host: str, path: str, data: bytes | str, *, owner: str = "root", group: str = "root",
             mode: int = 0o644) -> Script:
        """Pre-load a file that `get` will return."""
        raw = data.encode() if isinstance(data, str) else data
        self.files[(host, path)] = FakeFile(raw, owner, group, mode)
        return self

    def unreachable(self, host: str, reason: str = "connection refused") -> Script:
        """From now on every call to `host` raises HostUnreachable (like a powered-off node)."""
        self.down[host] = reason
        return self

    def serve_file_state(self, host: str | None = None) -> Script:
        """Answer every `file_state` fact from the in-memory files (what `put` wrote), so a test
        can run a deploy twice and see the second run change nothing."""
        from hastack.facts.files import FILE_STATE_SCRIPT, FileState, render_file_state

        def respond(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
            paths = argv[4:]
            states = {p: FileState.of(p, f.data, owner=f.owner, group=f.group, mode=f.mode)
                      for p in paths if (f := self.files.get((h, p))) is not None}
            return Result(h, argv, 0, render_file_state(paths, states), "")

        return self.add(on_prefix("sh", "-c", FILE_STATE_SCRIPT, "sh", host=host, times=None, respond=respond))

    def transport(self, host: str) -> FakeTransport:
        return FakeTransport(host, self)

    def fleet(self, *hosts: str) -> dict[str, FakeTransport]:
        return {h: FakeTransport(h, self) for h in hosts}

    # -- asserting --------------------------------------------------------------------------
    def runs(self, host: str | None = None) -> list[tuple[str, ...]]:
        """Argvs run, in order (on one host, or on all)."""
        return [c.argv for c in self.calls if c.kind == "run" and host in (None, c.host)]

    def puts(self, host: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.kind == "put" and host in (None, c.host)]

    def pending(self) -> list[Expect]:
        return [e for e in self.expects if e.times is not None and e.used < e.times]

    def assert_done(self) -> None:
        left = self.pending()
        if left:
            raise AssertionError("expected calls never made:\n  " + "\n  ".join(e.describe() for e in left))

    # -- answering (used by FakeTransport) -------------------------------------------------------
    def _check_up(self, host: str) -> None:
        if host in self.down:
            raise HostUnreachable(host, self.down[host])

    def _find(self, host: str, argv: tuple[str, ...]) -> Expect:
        candidates = [e for e in self.expects if not e.exhausted]
        if self.ordered:
            counted = [e for e in candidates if e.times is not None]
            standing = [e for e in candidates if e.times is None]
            candidates = counted[:1] + standing
        for e in candidates:
            if e.matches(host, argv):
                return e
        left = "\n  ".join(e.describe() for e in self.expects if not e.exhausted) or "(none)"
        where = "next in order" if self.ordered else "left"
        raise AssertionError(f"unexpected call on {host}: {shlex.join(argv)}\n"
                             f"expectations {where}:\n  {left}")

    async def _respond(self, host: str, argv: tuple[str, ...], stdin: bytes | None, timeout: float | None
                       ) -> Result:
        self.calls.append(Call(host, "run", argv, stdin))
        self._check_up(host)
        e = self._find(host, argv)
        e.used += 1
        if timeout is not None and e.delay > timeout:  # like a real transport: kill it, say so
            await asyncio.sleep(timeout)
            raise CommandTimeout(host, argv, timeout)
        if e.delay:
            await asyncio.sleep(e.delay)
        if e.raises is not None:
            raise e.raises
        if e.respond is not None:
            return e.respond(host, argv, stdin)
        return Result(host, argv, e.exit_status, e.stdout, e.stderr)


class FakeTransport:
    """One host's view of a Script. Satisfies the Transport protocol."""

    def __init__(self, host: str, script: Script):
        self.host = host
        self.script = script
        self.closed = False

    async def run(self, argv: Sequence[str], *, stdin: bytes | None = None, timeout: float | None = None,
                  check: bool = False) -> Result:
        if isinstance(argv, str):
            raise TypeError(f"argv must be a list, not the string {argv!r}")
        result = await self.script._respond(self.host, tuple(argv), stdin, timeout)
        return result.check() if check else result

    async def put(self, path: str, data: bytes, *, owner: str, group: str, mode: int,
                  stage_dir: str | None = None) -> None:
        put_argv(path, len(data), owner=owner, group=group, mode=mode, stage_dir=stage_dir)  # same validation
        call = Call(self.host, "put", path=path, data=data, owner=owner, group=group, mode=mode, stage_dir=stage_dir)
        self.script.calls.append(call)
        self.script._check_up(self.host)
        self.script.files[(self.host, path)] = FakeFile(data, owner, group, mode)

    async def get(self, path: str) -> bytes | None:
        self.script.calls.append(Call(self.host, "get", path=path))
        self.script._check_up(self.host)
        f = self.script.files.get((self.host, path))
        return None if f is None else f.data

    async def close(self) -> None:
        self.closed = True
