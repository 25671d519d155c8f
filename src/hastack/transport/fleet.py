"""Many hosts at once: a result per host, bounded parallelism, no hang.

Fabric's lesson: a many-host call returns an outcome for *every* host. One host failing (down,
timed out, command failed with `check`) is recorded for that host and never hides the hosts
that worked. Only HostError counts as a host's failure; anything else is a bug (or a test's
AssertionError) and propagates at once, after the other hosts' work is cancelled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast, overload

from hastack.transport.base import HostError, HostUnreachable, Result, Transport

T = TypeVar("T")
Call = Callable[[Transport], Awaitable[object]]


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What one host gave back: a value, or the HostError that stopped it."""

    host: str
    value: T | None = None
    error: HostError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> T:
        if self.error is not None:
            raise self.error
        return cast(T, self.value)


class PerHost(dict[str, Outcome[T]]):
    """Outcomes keyed by node name, in the order the transports were given."""

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.values())

    def succeeded(self) -> dict[str, T]:
        return {h: cast(T, o.value) for h, o in self.items() if o.error is None}

    def errors(self) -> dict[str, HostError]:
        return {h: o.error for h, o in self.items() if o.error is not None}


class Unreachable:
    """Stands in for a host that could not be connected: every call raises why.

    `connect_all` returns one of these instead of dropping the host, so that every later
    many-host call reports that host as failed instead of silently skipping it.

    With `reconnect`, a call made `retry_after` s or more after the last attempt connects again,
    and once that works every call goes to the new connection. A host that was still booting when
    the command started (its kernel refusing port 22 for the moment sshd takes to listen) is then
    reached when it is up, instead of being reported down for the whole run: `hastack recover`
    after a full power loss polled a cached "connection refused" for 300 s while the node's sshd
    had listened since 0.3 s after its boot (campaign cycle, 2026-12-04). A host that stays down
    costs one connection attempt per `retry_after` s, not one per call.
    """

    def __init__(self, error: HostUnreachable, reconnect: Callable[[], Awaitable[Transport]] | None = None,
                 *, retry_after: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.host = error.host
        self.error = error
        self._reconnect = reconnect
        self._retry_after = retry_after
        self._clock = clock
        self._tried = clock()
        self._live: Transport | None = None

    async def _transport(self) -> Transport:
        if self._live is not None:
            return self._live
        if self._reconnect is not None and self._clock() - self._tried >= self._retry_after:
            self._tried = self._clock()
            try:
                self._live = await self._reconnect()
                return self._live
            except HostUnreachable as exc:
                self.error = exc
                self._tried = self._clock()
        raise self.error

    async def run(
        self, argv: Sequence[str], *, stdin: bytes | None = None, timeout: float | None = None,
        check: bool = False,
    ) -> Result:
        return await (await self._transport()).run(argv, stdin=stdin, timeout=timeout, check=check)

    async def put(self, path: str, data: bytes, *, owner: str, group: str, mode: int,
                  stage_dir: str | None = None) -> None:
        await (await self._transport()).put(path, data, owner=owner, group=group, mode=mode, stage_dir=stage_dir)

    async def get(self, path: str) -> bytes | None:
        return await (await self._transport()).get(path)

    async def close(self) -> None:
        if self._live is not None:
            await self._live.close()


def unreachable(transports: Mapping[str, Transport]) -> dict[str, HostUnreachable]:
    return {name: t.error for name, t in transports.items() if isinstance(t, Unreachable)}


@overload
async def run_all(
    transports: Mapping[str, Transport], action: Sequence[str], *, max_parallel: int = 16,
    timeout: float | None = None, check: bool = False,
) -> PerHost[Result]: ...


@overload
async def run_all(
    transports: Mapping[str, Transport], action: Callable[[Transport], Awaitable[T]], *,
    max_parallel: int = 16, timeout: float | None = None, check: bool = False,
) -> PerHost[T]: ...


async def run_all(
    transports: Mapping[str, Transport],
    action: Sequence[str] | Call,
    *,
    max_parallel: int = 16,
    timeout: float | None = None,
    check: bool = False,
) -> PerHost[Any]:
    """Run an argv (or `await action(transport)`) on every host, at most `max_parallel` at once.

    `timeout` bounds each host's whole action: a host that does not answer in time becomes an
    error outcome for that host. With an argv, `check=True` turns a non-zero exit into an error
    outcome (CommandError); otherwise the Result carries the exit status.
    """
    if max_parallel < 1:
        raise ValueError("max_parallel must be at least 1")
    call, deadline = _as_call(action, timeout, check)
    gate = asyncio.Semaphore(max_parallel)
    tasks = [asyncio.create_task(_one(name, t, call, gate, deadline)) for name, t in transports.items()]
    if not tasks:
        return PerHost()
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:  # also when the caller cancels us: no host's work outlives this call
        await _cancel(t for t in tasks if not t.done())
    failed = [t for t in done if not t.cancelled() and t.exception() is not None]
    if failed:
        raise cast(BaseException, failed[0].exception())
    return PerHost((o.host, o) for o in (t.result() for t in tasks))


async def _cancel(tasks: Iterable[asyncio.Task[Outcome[object]]]) -> None:
    pending = list(tasks)
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


_SLACK = 2.0
"""An argv's own timeout kills the remote command and says so (CommandTimeout); the outer
deadline, a little later, only catches a host that stopped answering altogether."""


def _as_call(action: Sequence[str] | Call, timeout: float | None, check: bool) -> tuple[Call, float | None]:
    if callable(action):
        return action, timeout
    if isinstance(action, str) or not action:
        raise ValueError("run_all needs an argv list (or a callable), not a string")
    argv = list(action)
    deadline = None if timeout is None else timeout + _SLACK
    return (lambda t: t.run(argv, timeout=timeout, check=check)), deadline


async def _one(name: str, transport: Transport, call: Call, gate: asyncio.Semaphore,
               deadline: float | None) -> Outcome[object]:
    async with gate:
        try:
            value = await asyncio.wait_for(call(transport), deadline)
        except HostError as exc:
            return Outcome(name, error=exc)
        except TimeoutError:  # our deadline, or a timeout inside the action itself
            said = "timed out" if deadline is None else f"no answer within {deadline:g}s"
            return Outcome(name, error=HostError(name, said))
        return Outcome(name, value=value)


class Fleet:
    """The transports of a topology's nodes plus its parallelism: close them all in one place."""

    def __init__(self, transports: Mapping[str, Transport], *, max_parallel: int = 16):
        self.transports: dict[str, Transport] = dict(transports)
        self.max_parallel = max_parallel

    def __getitem__(self, name: str) -> Transport:
        return self.transports[name]

    @property
    def unreachable(self) -> dict[str, HostUnreachable]:
        return unreachable(self.transports)

    def only(self, names: Sequence[str]) -> dict[str, Transport]:
        return {n: self.transports[n] for n in names}

    @overload
    async def run_all(
        self, action: Sequence[str], *, names: Sequence[str] | None = None, timeout: float | None = None,
        check: bool = False,
    ) -> PerHost[Result]: ...

    @overload
    async def run_all(
        self, action: Callable[[Transport], Awaitable[T]], *, names: Sequence[str] | None = None,
        timeout: float | None = None, check: bool = False,
    ) -> PerHost[T]: ...

    async def run_all(
        self, action: Sequence[str] | Callable[[Transport], Awaitable[object]], *,
        names: Sequence[str] | None = None, timeout: float | None = None, check: bool = False,
    ) -> PerHost[Any]:
        targets = self.transports if names is None else self.only(names)
        return await run_all(targets, action, max_parallel=self.max_parallel, timeout=timeout, check=check)

    async def close(self) -> None:
        await asyncio.gather(*(t.close() for t in self.transports.values()), return_exceptions=True)

    async def __aenter__(self) -> Fleet:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
