"""SSH transport (asyncssh): production hosts and lab nodes alike.

Host keys are always verified against a known_hosts file: an unknown or changed key is an
error that says what to do, never a prompt, and verification is never switched off. The
client key, user, port and timeouts come from the topology's `ssh` section; relative paths
are relative to the topology file's directory. No OpenSSH client config is read, so what
the topology says is what happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import asyncssh

from hastack.topology.model import Node, Ssh, Topology
from hastack.transport.base import (
    CommandTimeout,
    ExecTransport,
    HostUnreachable,
    Transport,
    TransportError,
)
from hastack.transport.fleet import Fleet, Unreachable

KEEPALIVE_COUNT = 3


def remote_command(argv: Sequence[str]) -> str:
    """The one string SSH carries: argv quoted for a POSIX shell, under the C locale.

    SSH only transports a string that the login shell parses, so each argument is quoted
    (never a shell string built from input). `env LC_ALL=C` keeps tools' messages in the
    language the parsers expect, whatever the host's locale.
    """
    args = list(argv)
    if not args:
        raise ValueError("empty argv")
    if "=" in args[0]:
        raise ValueError(f"argv[0] must be a program, got {args[0]!r}")
    if any("\0" in a for a in args):
        raise ValueError("an argument contains a NUL byte")
    return shlex.join(["env", "LC_ALL=C", *args])


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", errors="replace")


def _bytes(data: bytes | str | None) -> bytes:
    if data is None:
        return b""
    return data if isinstance(data, bytes) else data.encode()


class SshTransport(ExecTransport):
    """One authenticated connection to one node; commands run as separate SSH sessions."""

    def __init__(self, host: str, conn: asyncssh.SSHClientConnection, address: str):
        self.host = host
        self.address = address
        self._conn = conn

    async def _exec(self, argv: Sequence[str], stdin: bytes | None, timeout: float | None
                    ) -> tuple[int, bytes, bytes]:
        command = remote_command(argv)
        try:
            proc = await self._conn.create_process(
                command, input=stdin or None, stdin=asyncssh.DEVNULL, encoding=None)
        except (asyncssh.Error, OSError) as exc:
            raise TransportError(self.host, f"cannot start `{shlex.join(argv)}`: {exc}") from exc
        try:
            done = await proc.wait(timeout=timeout)
        except asyncssh.TimeoutError as exc:
            self._stop(proc)
            partial = _text(exc.stdout) + _text(exc.stderr)
            raise CommandTimeout(self.host, argv, timeout or 0.0, partial) from None
        except asyncio.CancelledError:
            self._stop(proc)
            raise
        except (asyncssh.Error, OSError) as exc:
            raise TransportError(self.host, f"connection lost during `{shlex.join(argv)}`: {exc}") from exc
        if done.returncode is None:
            raise TransportError(self.host, f"connection closed before `{shlex.join(argv)}` finished")
        return done.returncode, _bytes(done.stdout), _bytes(done.stderr)

    @staticmethod
    def _stop(proc: asyncssh.SSHClientProcess[Any]) -> None:
        """Best effort: ask sshd to kill the command (OpenSSH honours signal requests), then
        close the session so that nothing of ours keeps running or waiting."""
        with contextlib.suppress(asyncssh.Error, OSError):
            proc.kill()
        proc.close()

    async def close(self) -> None:
        self._conn.close()
        with contextlib.suppress(TimeoutError, asyncssh.Error, OSError):
            await asyncio.wait_for(self._conn.wait_closed(), 5.0)


def resolve(path: Path | None, base_dir: Path) -> Path | None:
    """A topology path: `~` expanded, relative paths taken from the topology file's directory."""
    if path is None:
        return None
    path = path.expanduser()
    return path if path.is_absolute() else base_dir / path


def known_hosts_file(ssh: Ssh, base_dir: Path) -> Path:
    return resolve(ssh.known_hosts, base_dir) or Path("~/.ssh/known_hosts").expanduser()


def _options(ssh: Ssh, base_dir: Path) -> dict[str, Any]:
    known = known_hosts_file(ssh, base_dir)
    options: dict[str, Any] = {
        "username": ssh.user,
        "port": ssh.port,
        "known_hosts": str(known),  # never None: that would switch verification off
        "config": None,
        "connect_timeout": ssh.connect_timeout,
        "login_timeout": ssh.connect_timeout,
        "keepalive_interval": max(1.0, ssh.connect_timeout),
        "keepalive_count_max": KEEPALIVE_COUNT,
    }
    key = resolve(ssh.key, base_dir)
    if key is not None:
        options["client_keys"] = [str(key)]
        options["agent_path"] = None  # the topology named a key: use that one only
    return options


def _preflight(name: str, ssh: Ssh, base_dir: Path) -> None:
    known = known_hosts_file(ssh, base_dir)
    if not known.is_file():
        raise HostUnreachable(name, f"known_hosts file {known} does not exist: host keys cannot be verified "
                                    "(the lab writes it; for real hosts collect the keys out of band)")
    key = resolve(ssh.key, base_dir)
    if key is not None and not key.is_file():
        raise HostUnreachable(name, f"SSH key {key} (ssh.key in the topology) does not exist")


async def connect(node: Node, ssh: Ssh, base_dir: Path) -> SshTransport:
    """Connect to one node, or raise HostUnreachable saying why (and what to do)."""
    _preflight(node.name, ssh, base_dir)
    address = str(node.address)
    where = f"{address}:{ssh.port}"
    try:
        conn = await asyncio.wait_for(asyncssh.connect(address, **_options(ssh, base_dir)),
                                      ssh.connect_timeout + 1.0)
    except asyncssh.HostKeyNotVerifiable as exc:
        raise HostUnreachable(node.name, (
            f"host key of {where} is not trusted by {known_hosts_file(ssh, base_dir)} ({exc.reason}): "
            "the host is new, was rebuilt, or is not who it claims to be; verify its key out of band "
            "and update that file")) from None
    except asyncssh.PermissionDenied as exc:
        raise HostUnreachable(node.name, f"{where} refused the key for user {ssh.user} ({exc.reason})"
                              ) from None
    except TimeoutError:
        raise HostUnreachable(node.name, f"{where} did not answer within {ssh.connect_timeout:g}s") from None
    except (asyncssh.Error, OSError) as exc:
        raise HostUnreachable(node.name, f"cannot connect to {where}: {exc}") from None
    return SshTransport(node.name, conn, address)


async def connect_all(topo: Topology, topology_file: Path, *, names: Iterable[str] | None = None
                      ) -> dict[str, Transport]:
    """Connect to the topology's nodes (or `names`) in parallel, in topology order.

    A node that cannot be reached is not dropped: it maps to an `Unreachable` transport whose
    every call raises the connection error, so each later many-host call reports it, until a
    later call finds it up (`Unreachable` connects again, at most every few seconds).
    """
    wanted = None if names is None else set(names)
    nodes = [n for n in topo.nodes if wanted is None or n.name in wanted]
    if wanted is not None and (unknown := wanted - {n.name for n in nodes}):
        raise KeyError(f"not in the topology: {', '.join(sorted(unknown))}")
    base_dir = topology_file.resolve().parent
    gate = asyncio.Semaphore(topo.ssh.max_parallel)

    async def one(node: Node) -> Transport:
        async def again() -> Transport:
            async with gate:
                return await connect(node, topo.ssh, base_dir)

        try:
            return await again()
        except HostUnreachable as exc:
            return Unreachable(exc, again)

    return dict(zip([n.name for n in nodes], await asyncio.gather(*(one(n) for n in nodes)), strict=True))


async def connect_fleet(topo: Topology, topology_file: Path, *, names: Iterable[str] | None = None) -> Fleet:
    """`async with await connect_fleet(topo, path) as fleet:` closes every connection at the end."""
    return Fleet(await connect_all(topo, topology_file, names=names), max_parallel=topo.ssh.max_parallel)
