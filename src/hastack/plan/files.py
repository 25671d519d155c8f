"""Desired files vs the files on a host: what changes, shown as a diff with secrets masked. Pure."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from hastack.components.base import File

Action = Literal["create", "update", "attrs", "unchanged"]


@dataclass(frozen=True)
class Actual:
    """What a host has at a path (from the file-state fact); `sha256` None when missing."""

    sha256: str | None
    owner: str = ""
    group: str = ""
    mode: int = 0


@dataclass(frozen=True)
class FileChange:
    host: str
    file: File
    action: Action
    before: Actual

    @property
    def changed(self) -> bool:
        return self.action != "unchanged"

    @property
    def content_changed(self) -> bool:
        return self.action in ("create", "update")

    def summary(self) -> str:
        f, b = self.file, self.before
        if self.action == "attrs":
            return (f"{f.path}: {b.owner}:{b.group} {b.mode:04o} -> {f.owner}:{f.group} {f.mode:04o}")
        return f"{f.path}: {self.action} ({f.owner}:{f.group} {f.mode:04o})"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def compare(host: str, desired: list[File], actual: dict[str, Actual]) -> list[FileChange]:
    out = []
    for f in desired:
        a = actual.get(f.path, Actual(None))
        if a.sha256 is None:
            action: Action = "create"
        elif a.sha256 != sha256(f.data):
            action = "update"
        elif (a.owner, a.group, a.mode) != (f.owner, f.group, f.mode):
            action = "attrs"
        else:
            action = "unchanged"
        out.append(FileChange(host, f, action, a))
    return out


def diff(change: FileChange, old_text: str | None, masker: Callable[[str], str] | None = None) -> str:
    """A unified diff for a plan. Secret files are never diffed: only 'content changed' is said."""
    f = change.file
    if f.secret:
        what = "created" if change.action == "create" else "changed"  # (the old one is never read)
        return f"--- {f.path}\n+++ {f.path}\n(secret content {what}; not shown)\n"
    if isinstance(f.content, bytes):
        return f"(binary file {f.path} {change.action})\n"
    lines = difflib.unified_diff((old_text or "").splitlines(keepends=True), f.content.splitlines(keepends=True),
                                 fromfile=f"{change.host}:{f.path}" if old_text is not None else "/dev/null",
                                 tofile=f"{change.host}:{f.path}")
    text = "".join(lines)
    if masker is not None:
        text = masker(text)
    return text
