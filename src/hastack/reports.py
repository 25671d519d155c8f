"""Coded reports: the library never prints, it returns these and the CLI renders them.

Tests assert on `code` (stable) and `location`, never on the wording of `message`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(enum.IntEnum):
    INFO = 0
    WARNING = 1
    ERROR = 2


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
    path: tuple[str | int, ...] = field(default=())

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

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
