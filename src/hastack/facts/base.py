"""A fact is a command (argv) plus a pure parser of what it printed (pyinfra's lesson).

Parsers never touch a host: they are tested on recorded output (tests/unit/recorded/). Only
`gather` runs anything, through a Transport, so the same fact works over SSH, locally and
against the fake.

Facts that ask a daemon (mariadb, rabbitmqctl, crm_mon, HAProxy) report "the daemon does not
answer" as data (`available=False` and the tool's own message), because status and drills
need exactly that. A FactError means the output was not what the tool prints: a bug, or a
tool version this code does not know.
"""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from hastack.transport.base import CommandError, HostError, Result, Transport
from hastack.transport.fleet import PerHost, run_all

T = TypeVar("T")


class FactError(HostError):
    """A fact's output could not be understood."""


@dataclass(frozen=True)
class Fact(Generic[T]):
    name: str
    argv: tuple[str, ...]
    parse: Callable[[Result], T]
    """Pure: Result -> value. Raises ValueError (or CommandError) on output it cannot use."""
    timeout: float = 30.0

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def require_exit(result: Result, allowed: Collection[int] = (0,)) -> Result:
    """Raise CommandError unless the exit status is one the tool uses for an answer."""
    if result.exit_status not in allowed:
        raise CommandError(result)
    return result


async def gather(transport: Transport, fact: Fact[T], *, timeout: float | None = None) -> T:
    """Run a fact's command on one host and parse it; FactError when the output makes no sense."""
    result = await transport.run(fact.argv, timeout=fact.timeout if timeout is None else timeout)
    try:
        return fact.parse(result)
    except HostError:
        raise
    except (ValueError, KeyError, IndexError, TypeError, SyntaxError) as exc:
        tail = "".join(f"\n    | {line}" for line in result.tail(10).splitlines())
        raise FactError(result.host, f"{fact.name}: cannot parse the output of `{fact.command}` "
                                     f"(exit {result.exit_status}): {exc}{tail}") from exc


async def gather_all(transports: Mapping[str, Transport], fact: Fact[T] | Callable[[str], Fact[T]], *,
                     max_parallel: int = 16, timeout: float | None = None) -> PerHost[T]:
    """One fact on many hosts: a value or an error per host.

    Pass a function of the host name when the fact differs per host (e.g. the paths of the
    files that host should have).
    """
    def fact_for(t: Transport) -> Awaitable[T]:
        return gather(t, fact if isinstance(fact, Fact) else fact(t.host), timeout=timeout)

    return await run_all(transports, fact_for, max_parallel=max_parallel,
                         timeout=None if timeout is None else timeout + 2.0)


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""
