"""Coded reports: the library never prints, it returns these and the CLI renders them.

One type for every kind of report: a topology problem (`topology/validate.py`, with its file:line),
a status finding (`status/rules*.py`, about a layer and a node), a deploy failure (`StepFailed.report`:
host, step, command, exit code, output tail) and a drill's run error (`drills/runner.py`). Tests
assert on `code` (stable), `severity` and the structured parts (`location`, `area`, `subject`,
`fields`), never on the wording of `message`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(enum.IntEnum):
    """Nagios' scale: 0 ok/info, 1 warning, 2 critical, 3 unknown. Status says degraded and down
    for warning and error (the same members, under their status names)."""

    INFO = 0
    WARNING = 1
    ERROR = 2
    UNKNOWN = 3
    DEGRADED = 1
    DOWN = 2

    @property
    def rank(self) -> int:
        """Worst first: error (down), unknown, warning (degraded), info."""
        return {Severity.ERROR: 3, Severity.UNKNOWN: 2, Severity.WARNING: 1, Severity.INFO: 0}[self]

    @property
    def word(self) -> str:
        """The status word: info, degraded, down, unknown."""
        return {Severity.INFO: "info", Severity.WARNING: "degraded", Severity.ERROR: "down",
                Severity.UNKNOWN: "unknown"}[self]


@dataclass(frozen=True, order=True)
class Location:
    """Where in which file a value stands (1-based line and column)."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.column}" if self.column else f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Report:
    code: str
    severity: Severity
    message: str
    location: Location | None = None
    hint: str = ""
    """What to do about it (a command to run next, the key to change)."""
    path: tuple[str | int, ...] = field(default=())
    """The key path in the topology (validation)."""
    area: str = ""
    """What part it is about: a status layer (galera, vip ...), a deploy stage, a drill's scenario."""
    subject: str = ""
    """The node or host it is about, if one."""
    fields: tuple[tuple[str, str], ...] = field(default=())
    """Structured facts beside the message (a deploy failure's step, command, exit code, output)."""

    def field(self, name: str) -> str:
        return dict(self.fields).get(name, "")

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def to_json(self) -> dict[str, object]:
        """The report as JSON data (drill reports and campaigns; empty parts left out). The severity
        by its general name (info, warning, error, unknown); `hastack status --json` keeps its own
        keys and words (level: degraded, down)."""
        out: dict[str, object] = {"code": self.code, "severity": self.severity.name.lower(), "message": self.message}
        for key, value in (("location", str(self.location) if self.location else ""), ("hint", self.hint),
                           ("area", self.area), ("subject", self.subject)):
            if value:
                out[key] = value
        if self.fields:
            out["fields"] = dict(self.fields)
        return out

    def render(self) -> str:
        where = f"{self.location}: " if self.location else ""
        hint = f"\n    -> {self.hint}" if self.hint else ""
        return f"{where}{self.severity.name.lower()} [{self.code}] {self.message}{hint}"


class ReportError(Exception):
    """Raised by library code that must stop; carries every report, not just the first."""

    def __init__(self, reports: list[Report]):
        super().__init__("; ".join(r.render() for r in reports))
        self.reports = reports


def has_errors(reports: list[Report]) -> bool:
    return any(r.is_error for r in reports)
