"""What every transport offers: run an argv, put a file atomically, get a file, close.

A transport is the only way hastack touches a host. Three implement this protocol: `ssh`
(production and the lab), `local` (this machine) and `fake` (tests). They share the remote
scripts below, so the local transport's tests exercise exactly what SSH runs on a node.

Commands are argv lists. Nothing secret ever travels in an argv (argvs show up in `ps`, in
logs and in error messages): secrets travel only as file contents or stdin.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Result:
    """One finished command on one host. A non-zero exit is data, not an exception."""

    host: str
    argv: tuple[str, ...]
    exit_status: int
    """The exit code; minus the signal number when the command was killed by a signal."""
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    def tail(self, n: int = 20) -> str:
        """The last `n` lines of stdout followed by stderr: what an error report shows."""
        lines = (self.stdout.rstrip("\n").splitlines() if self.stdout.strip() else []) + (
            self.stderr.rstrip("\n").splitlines() if self.stderr.strip() else []
        )
        return "\n".join(lines[-n:]) if n > 0 else ""

    def check(self) -> Result:
        """Return self, or raise CommandError when the command failed."""
        if not self.ok:
            raise CommandError(self)
        return self


class HostError(Exception):
    """Something went wrong on or with one host.

    `run_all` records these per host (a partial failure never hides the hosts that worked);
    anything else (a bug, a test's AssertionError) propagates.
    """

    def __init__(self, host: str, message: str):
        super().__init__(f"{host}: {message}")
        self.host = host
        self.message = message


class TransportError(HostError):
    """The host could not be reached or the connection broke (not a command's failure)."""


class HostUnreachable(TransportError):
    """Connecting failed: refused, timed out, unknown host key, authentication failed."""


class CommandError(HostError):
    """A command exited non-zero where success was required.

    Renders host, command, exit code and the tail of the output. Never stdin (where secrets
    travel), and argvs carry no secrets by convention.
    """

    def __init__(self, result: Result, tail_lines: int = 20):
        tail = result.tail(tail_lines)
        shown = "".join(f"\n    | {line}" for line in tail.splitlines()) if tail else "\n    (no output)"
        super().__init__(result.host, f"`{result.command}` failed with exit code {result.exit_status}{shown}")
        self.result = result


class CommandTimeout(HostError):
    """A command did not finish within its timeout (it was killed where the transport can)."""

    def __init__(self, host: str, argv: Sequence[str], timeout: float, partial: str = ""):
        tail = "\n".join(partial.rstrip("\n").splitlines()[-20:])
        shown = "".join(f"\n    | {line}" for line in tail.splitlines())
        super().__init__(host, f"`{shlex.join(argv)}` did not finish within {timeout:g}s{shown}")
        self.argv = tuple(argv)
        self.timeout = timeout


@runtime_checkable
class Transport(Protocol):
    """How hastack talks to one host (a node of the topology, or this machine)."""

    host: str
    """The node name (never an address): reports and results are keyed by it."""

    async def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> Result:
        """Run argv; return its Result. Raise CommandError if `check` and it failed,
        CommandTimeout when it outlived `timeout`, TransportError when the host is gone."""
        ...

    async def put(self, path: str, data: bytes, *, owner: str, group: str, mode: int,
                  stage_dir: str | None = None) -> None:
        """Write a file atomically (see PUT_SCRIPT); raise CommandError when that fails. `stage_dir`:
        where the temporary file is made (default: the file's own directory), for directories whose
        every entry a daemon opens (see `File.stage_dir`)."""
        ...

    async def get(self, path: str) -> bytes | None:
        """The file's bytes, or None when there is no file at `path`."""
        ...

    async def close(self) -> None: ...


# -- the remote scripts shared by every real transport -------------------------------------
# Fixed strings: run as `sh -c SCRIPT sh ARG...`, so the arguments are never parsed as shell.

MISSING_EXIT = 66
"""Exit code of GET_SCRIPT when the path does not exist (EX_NOINPUT in sysexits.h)."""

GET_SCRIPT = '[ -e "$1" ] || exit 66; exec cat -- "$1"'

PUT_SCRIPT = r"""set -eu
path=$1 owner=$2 group=$3 mode=$4 size=$5
dir=$(dirname -- "$path")
[ -d "$dir" ] || (umask 022 && mkdir -p -- "$dir")
stage=${6:-$dir}
tmp=$(mktemp -- "$stage/.hastack-put.XXXXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat >"$tmp"
got=$(wc -c <"$tmp")
if [ "$got" -ne "$size" ]; then echo "short write: got $got of $size bytes" >&2; exit 1; fi
chown -- "$owner:$group" "$tmp"
chmod -- "$mode" "$tmp"
sync -- "$tmp"
mv -fT -- "$tmp" "$path"
trap - EXIT
sync -- "$dir"
"""
"""Atomic write of stdin to $1. `mktemp` creates the temp file 0600 and owned by the caller, so
the content is never readable by anyone else, not even for an instant; it only becomes visible
under its final name, owner and mode through one rename(2) in the same directory. The size
check stops a connection dropped mid-transfer from installing a truncated file. Missing parent
directories are created 0755 (components that need other modes declare their directories).
$6, when given, is the directory the temporary file is made in (on the same file system, so the
rename stays atomic): Keystone opens every entry of its key directory, names it cannot use included,
and a root-only temporary file there made its token requests fail while the file existed."""

_NAME = re.compile(r"^[a-z_][a-z0-9_-]*[$]?$")


def put_argv(path: str, size: int, *, owner: str, group: str, mode: int, stage_dir: str | None = None) -> list[str]:
    """The argv that runs PUT_SCRIPT; validates its inputs so a bad value fails here, loudly."""
    if not path.startswith("/") or "\0" in path or path.endswith("/"):
        raise ValueError(f"put needs an absolute file path, got {path!r}")
    if stage_dir is not None and (not stage_dir.startswith("/") or "\0" in stage_dir):
        raise ValueError(f"put needs an absolute staging directory, got {stage_dir!r}")
    for what, name in (("owner", owner), ("group", group)):
        if not _NAME.match(name):
            raise ValueError(f"invalid {what} name {name!r} for {path}")
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"invalid mode {mode:o} for {path}")
    stage = [] if stage_dir is None else [stage_dir]
    return ["sh", "-c", PUT_SCRIPT, "sh", path, owner, group, f"{mode:04o}", str(size), *stage]


def get_argv(path: str) -> list[str]:
    if not path.startswith("/") or "\0" in path:
        raise ValueError(f"get needs an absolute path, got {path!r}")
    return ["sh", "-c", GET_SCRIPT, "sh", path]


class ExecTransport:
    """run/put/get for every transport that can execute an argv: a subclass supplies `_exec`
    (exit status, stdout bytes, stderr bytes) and `close`; the file scripts above do the rest."""

    host: str

    async def _exec(self, argv: Sequence[str], stdin: bytes | None, timeout: float | None
                    ) -> tuple[int, bytes, bytes]:
        raise NotImplementedError

    async def run(self, argv: Sequence[str], *, stdin: bytes | None = None, timeout: float | None = None,
                  check: bool = False) -> Result:
        status, out, err = await self._exec(argv, stdin, timeout)
        result = Result(self.host, tuple(argv), status, out.decode(errors="replace"), err.decode(errors="replace"))
        return result.check() if check else result

    async def put(self, path: str, data: bytes, *, owner: str, group: str, mode: int,
                  stage_dir: str | None = None) -> None:
        argv = put_argv(path, len(data), owner=owner, group=group, mode=mode, stage_dir=stage_dir)
        await self.run(argv, stdin=data, timeout=120.0, check=True)

    async def get(self, path: str) -> bytes | None:
        argv = get_argv(path)
        status, out, err = await self._exec(argv, None, 120.0)
        if status == MISSING_EXIT:
            return None
        if status != 0:
            raise CommandError(Result(self.host, tuple(argv), status, "", err.decode(errors="replace")))
        return out
