"""The steps a deploy takes beyond files and packages, as data: unit starts and restarts, cluster
actions (bootstrap, join, forget, `restart_vhost`, `crm configure load update` ...) and the gates
that close each stage. `hastack plan`, `deploy --dry-run` and deploy's own question show them.

Each deploy stage says its own (`preview` in `deploy/stages/*.py`), reading the hosts as they are
now and deciding with the same functions its run decides with. A step whose need can only be
known after an earlier one (a broker that is down now joins only if its database does not name
the cluster already) says so in its text. Pure data: no I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

StepKind = Literal["change", "check", "refuse"]
"""change: deploy will change something; check: a gate or an idempotent read-and-fix that changes
only what differs; refuse: deploy would stop here, and why (the same words as its failure)."""


@dataclass(frozen=True)
class Step:
    stage: str
    host: str
    """The host it runs on; '' for the stage as a whole."""
    kind: StepKind
    text: str
    code: str = ""
    """A refusal's stable code: the one deploy's failure at that step carries (`StepFailed.code`)."""

    def render(self) -> str:
        mark = {"change": "*", "check": "=", "refuse": "!"}[self.kind]
        return f"{mark} {self.host + ': ' if self.host else ''}{self.text}"


def changes(steps: list[Step]) -> list[Step]:
    return [s for s in steps if s.kind == "change"]


def refusals(steps: list[Step]) -> list[Step]:
    return [s for s in steps if s.kind == "refuse"]
