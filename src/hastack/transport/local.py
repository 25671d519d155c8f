"""Local transport: the same contract as SSH, run on this machine with asyncio subprocesses.

`put` and `get` run the very same shell scripts the SSH transport sends to nodes, so testing
this transport tests the remote file handling too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence

from hastack.transport.base import CommandTimeout, ExecTransport

NOT_FOUND_EXIT = 127
"""What a shell returns for a missing program; the SSH transport gets it from the remote shell."""


class LocalTransport(ExecTransport):
    def __init__(self, host: str = "localhost", *, env: Mapping[str, str] | None = None):
        self.host = host
        self._env = {**os.environ, **(env or {}), "LC_ALL": "C"}

    async def _exec(self, argv: Sequence[str], stdin: bytes | None, timeout: float | None
                    ) -> tuple[int, bytes, bytes]:
        if not argv:
            raise ValueError("empty argv")
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=self._env, start_new_session=True)
        except FileNotFoundError:
            return NOT_FOUND_EXIT, b"", f"{argv[0]}: not found\n".encode()
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin or None), timeout)
        except TimeoutError:
            await _kill(proc)
            raise CommandTimeout(self.host, argv, timeout or 0.0) from None
        except asyncio.CancelledError:
            await _kill(proc)
            raise
        assert proc.returncode is not None
        return proc.returncode, out, err

    async def close(self) -> None:
        return None


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """Kill the command and everything it started (its own session), then reap it."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        await proc.wait()
