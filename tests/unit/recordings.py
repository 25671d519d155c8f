"""Recorded command output for parser tests: load, save, and re-record over a transport.

A recording is tests/unit/recorded/<tool>/<case>.txt: header lines starting with `#@ `, then
the command's stdout byte for byte (see recorded/README.md). The header holds the exact argv
(JSON), the exit status, stderr and where the recording came from.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from hastack.facts.base import Fact as _Fact
from hastack.transport.base import Result

T = TypeVar("T")

RECORDED = Path(__file__).resolve().parent / "recorded"
PREFIX = "#@ "


@dataclass(frozen=True)
class Recording:
    argv: tuple[str, ...]
    exit_status: int
    stdout: str
    stderr: str = ""
    host: str = ""
    source: str = ""
    notes: tuple[str, ...] = field(default=())

    def result(self, host: str | None = None) -> Result:
        return Result(host or self.host or "recorded", self.argv, self.exit_status, self.stdout, self.stderr)

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def path_of(tool: str, case: str) -> Path:
    return RECORDED / tool / f"{case}.txt"


def parse(text: str) -> Recording:
    header: dict[str, list[str]] = {}
    rest = text
    while rest.startswith(PREFIX):
        line, _, rest = rest.partition("\n")
        key, _, value = line[len(PREFIX):].partition(": ")
        header.setdefault(key, []).append(value)
    argv = tuple(json.loads(header["argv"][0]))
    stderr = "".join(json.loads(v) for v in header.get("stderr", []))
    return Recording(argv, int(header["exit"][0]), rest, stderr, header.get("host", [""])[0],
                     " ".join(header.get("source", [])), tuple(header.get("note", [])))


def load(tool: str, case: str) -> Recording:
    return parse(path_of(tool, case).read_text())


def render(rec: Recording) -> str:
    lines = [f"command: {rec.command if chr(10) not in rec.command else rec.argv[0] + ' ... (see argv)'}",
             f"argv: {json.dumps(list(rec.argv))}", f"exit: {rec.exit_status}"]
    if rec.host:
        lines.append(f"host: {rec.host}")
    lines += [f"source: {rec.source}"] + [f"note: {n}" for n in rec.notes]
    lines += [f"stderr: {json.dumps(line)}" for line in rec.stderr.splitlines(keepends=True)]
    return "".join(PREFIX + line + "\n" for line in lines) + rec.stdout


def save(tool: str, case: str, rec: Recording) -> Path:
    path = path_of(tool, case)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(rec))
    return path


def answer(fact: _Fact[T], tool: str, case: str) -> T:
    """Parse a recording with a fact, after checking the recording ran that fact's exact argv."""
    rec = load(tool, case)
    assert rec.argv == fact.argv, f"{tool}/{case} was recorded with another command than {fact.name}: re-record it"
    return fact.parse(rec.result())
