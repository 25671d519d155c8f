"""File facts: the state of many paths in one command, and one file's content.

Only sh and coreutils are needed on the host (an arbitrator may have no python3). Paths are
passed as arguments of a fixed script and reported by position, so no path can break the
output format.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from hastack.facts.base import Fact, require_exit
from hastack.transport.base import MISSING_EXIT, Result, get_argv

T = TypeVar("T")

FILE_STATE_SCRIPT = r"""i=0
for p do
  if [ -e "$p" ] || [ -L "$p" ]; then
    meta=$(stat --printf '%U\t%G\t%a\t%F' -- "$p") || meta=$(printf '?\t?\t0\tunreadable')
    sum=-
    if [ -f "$p" ] && [ ! -L "$p" ]; then sum=$(sha256sum <"$p" | cut -d' ' -f1); fi
    printf '%s\t%s\t%s\n' "$i" "$meta" "${sum:--}"
  else
    printf '%s\tmissing\n' "$i"
  fi
  i=$((i+1))
done
"""
"""Prints, per path argument in order: `index TAB owner TAB group TAB octal-mode TAB type TAB
sha256` (sha256 `-` unless a regular file), or `index TAB missing`."""


@dataclass(frozen=True)
class FileState:
    """What a host has at a path. Field names match plan.files.Actual."""

    path: str
    exists: bool
    owner: str = ""
    group: str = ""
    mode: int = 0
    kind: str = ""
    """As stat(1) says it: "regular file", "regular empty file", "directory", "symbolic link"..."""
    sha256: str | None = None
    """Content hash of a regular file; None when missing or not a regular file."""

    @classmethod
    def of(cls, path: str, data: bytes, *, owner: str = "root", group: str = "root", mode: int = 0o644
           ) -> FileState:
        """The state a regular file with this content would have (for fakes and comparisons)."""
        kind = "regular file" if data else "regular empty file"
        return cls(path, True, owner, group, mode, kind, hashlib.sha256(data).hexdigest())

    def matches(self, data: bytes, *, owner: str, group: str, mode: int) -> bool:
        return (self.sha256 == hashlib.sha256(data).hexdigest()
                and (self.owner, self.group, self.mode) == (owner, group, mode))


def parse_file_state(paths: Sequence[str], text: str) -> dict[str, FileState]:
    """Every requested path gets an entry; a path the output does not mention is an error."""
    out: dict[str, FileState] = {}
    for line in text.splitlines():
        if not line:
            continue
        fields = line.split("\t")
        path = paths[int(fields[0])]
        if fields[1:] == ["missing"]:
            out[path] = FileState(path, False)
            continue
        if len(fields) != 6:
            raise ValueError(f"unexpected file-state line {line!r}")
        _, owner, group, mode, kind, digest = fields
        sha = digest if len(digest) == 64 else None
        out[path] = FileState(path, True, owner, group, int(mode, 8), kind, sha)
    if missing := [p for p in paths if p not in out]:
        raise ValueError(f"no state reported for {', '.join(missing)}")
    return out


def render_file_state(paths: Sequence[str], states: Mapping[str, FileState]) -> str:
    """The output FILE_STATE_SCRIPT would print for these states (scripts fakes' answers)."""
    lines = []
    for i, p in enumerate(paths):
        s = states.get(p)
        if s is None or not s.exists:
            lines.append(f"{i}\tmissing")
        else:
            lines.append(f"{i}\t{s.owner}\t{s.group}\t{s.mode:o}\t{s.kind}\t{s.sha256 or '-'}")
    return "".join(line + "\n" for line in lines)


def file_state(paths: Sequence[str]) -> Fact[dict[str, FileState]]:
    """sha256, owner, group and mode of many paths in one round trip."""
    wanted = tuple(paths)
    for p in wanted:
        if not p.startswith("/"):
            raise ValueError(f"file_state needs absolute paths, got {p!r}")

    def parse(r: Result) -> dict[str, FileState]:
        return parse_file_state(wanted, require_exit(r).stdout)

    return Fact("file_state", ("sh", "-c", FILE_STATE_SCRIPT, "sh", *wanted), parse)


def read_text(path: str) -> Fact[str | None]:
    """A (small, text) file's content, or None when there is no file at `path`."""

    def parse(r: Result) -> str | None:
        if r.exit_status == MISSING_EXIT:
            return None
        return require_exit(r).stdout

    return Fact(f"read {path}", tuple(get_argv(path)), parse)


def read_parsed(name: str, path: str, parse: Callable[[str], T]) -> Fact[T | None]:
    """A small text file parsed by `parse`, or None when there is no file at `path`."""
    raw = read_text(path)

    def parsed(r: Result) -> T | None:
        text = raw.parse(r)
        return None if text is None else parse(text)

    return Fact(name, raw.argv, parsed, raw.timeout)
