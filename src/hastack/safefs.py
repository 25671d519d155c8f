"""Writing files that may hold secrets on a machine where other users, and planted links, exist.

A file is written under a fresh unpredictable name in its own directory, created with
O_CREAT | O_EXCL | O_NOFOLLOW and its final mode, then renamed over the target. So it is never
readable by others, even while being written (the old way truncated a 0644 file, wrote the secret,
then chmod'ed); a file or link planted under the temporary name is refused, not reused or followed;
and the rename replaces a link at the target rather than writing through it. Directories under a
root are opened one component at a time with O_NOFOLLOW, each relative to the previous one, so a
link planted in place of a directory stops the write instead of redirecting it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(OSError):
    """A path component is a symbolic link or not a directory: nothing was written through it."""


def open_dir(path: Path | str, dir_fd: int | None = None) -> int:
    """An fd of the directory itself, never of what a link there points at."""
    try:
        return os.open(path, DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePath(exc.errno, "a symbolic link or not a directory", str(path)) from None
        raise


@contextlib.contextmanager
def subdir(root_fd: int, parts: Sequence[str], mode: int = 0o755) -> Iterator[int]:
    """Open (creating as needed) root/parts[0]/parts[1]/..., refusing a link at every step."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            if part in ("", ".", "..") or "/" in part:
                raise UnsafePath(errno.EINVAL, "not a plain path component", part)
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, mode, dir_fd=fd)
            child = open_dir(part, dir_fd=fd)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def write_at(dir_fd: int, name: str, data: bytes, mode: int) -> None:
    """Atomically replace dir/name with `data`, mode `mode` from the first byte (see module doc)."""
    if name in ("", ".", "..") or "/" in name:
        raise UnsafePath(errno.EINVAL, "not a plain file name", name)
    tmp = f".{name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, NEW_FILE_FLAGS, mode & 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)  # exactly `mode` whatever the umask; the file is still empty
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def write_private(path: Path, text: str) -> None:
    """path's contents, mode 0600 from the first byte, in a parent made 0700 if it is new."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = open_dir(path.parent)
    try:
        write_at(fd, path.name, text.encode(), 0o600)
    finally:
        os.close(fd)
