"""The only code that changes hosts: runs deploy stages in order, each closed by a health gate.

A stage runs per host in parallel where that is safe, or one host at a time (rolling) where a
cluster could lose quorum. A failed step stops its stage after the other hosts have finished
their current step, so what worked stays visible; the next stage never starts. Every stage
compares facts with the desired state first, so a re-run continues where it stopped and a
second deploy with nothing to do changes nothing.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from hastack.components.base import Desired, File
from hastack.deploy.wait import GateTimeout, until
from hastack.facts import Fact, gather
from hastack.facts.base import FactError
from hastack.plan.steps import Step
from hastack.reports import Report, Severity
from hastack.secrets import Secrets
from hastack.topology.model import Node, Topology
from hastack.transport.base import CommandError, HostError, Result, Transport

T = TypeVar("T")
EventKind = Literal["stage", "step", "change", "ok", "fail", "info"]


async def put_file(t: Transport, f: File) -> None:
    """Write one rendered file as it asks (owner, mode, and where its temporary file may stand): the one
    write path of the files stage and of `rotate-keys`."""
    await t.put(f.path, f.data, owner=f.owner, group=f.group, mode=f.mode, stage_dir=f.stage_dir)


@dataclass(frozen=True)
class Event:
    stage: str
    host: str
    kind: EventKind
    message: str


class StepFailed(Exception):
    """One failed step: host, step, command, exit code and the tail of its output, under a stable
    code: DEPLOY-COMMAND-FAILED (a command exited non-zero), DEPLOY-HOST-UNREACHABLE, DEPLOY-READ-FAILED
    (an answer that could not be understood), DEPLOY-GATE-TIMEOUT, DEPLOY-STEP-FAILED (any other), or
    the code of a refusal (GALERA-HAS-DATA, RABBIT-DEPARTED-RUNNING ...)."""

    def __init__(self, host: str, step: str, detail: str = "", result: Result | None = None, *, code: str = ""):
        self.host, self.step, self.detail, self.result = host, step, detail, result
        self.code = code or ("DEPLOY-COMMAND-FAILED" if result is not None else "DEPLOY-STEP-FAILED")
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.host}: step '{self.step}' failed [{self.code}]" + (f": {self.detail}" if self.detail else "")]
        if self.result is not None:
            lines += [f"  command:   {shlex.join(self.result.argv)}", f"  exit code: {self.result.exit_status}",
                      "  output (last lines):"]
            lines += [f"    {line}" for line in self.result.tail(15).splitlines()]
        return "\n".join(lines)

    def report(self, stage: str = "") -> Report:
        """The failure as a report: the host is its subject, the stage its area, and the step,
        command, exit code and output tail its fields."""
        fields = [("step", self.step)]
        if self.result is not None:
            fields += [("command", shlex.join(self.result.argv)), ("exit_code", str(self.result.exit_status)),
                       ("output", self.result.tail(15))]
        return Report(self.code, Severity.ERROR, self.detail or f"step '{self.step}' failed", area=stage,
                      subject=self.host, fields=tuple(fields))


class StageFailed(Exception):
    def __init__(self, stage: str, failures: list[StepFailed]):
        self.stage, self.failures = stage, failures
        super().__init__(f"stage {stage}: " + "; ".join(f.render() for f in failures))

    def reports(self) -> list[Report]:
        return [f.report(self.stage) for f in self.failures]


class Interrupted(Exception):
    """Ctrl-C: raised between steps, never in the middle of one."""


class Stage(Protocol):
    name: str

    def applies(self, d: Deploy) -> bool: ...

    async def run(self, d: Deploy) -> None: ...

    async def preview(self, d: Deploy) -> list[Step]:
        """The steps `run` would take now, from reads only (`hastack plan`); see `plan/steps.py`."""
        ...


@dataclass
class StageTiming:
    name: str
    seconds: float
    changes: int


@dataclass
class Deploy:
    topo: Topology
    desired: dict[str, Desired]
    transports: dict[str, Transport]
    secrets: Secrets
    emit: Callable[[Event], None] = lambda e: None
    stage: str = ""
    changes: int = 0
    restarts: dict[str, set[str]] = field(default_factory=dict)
    """Units per host whose files changed in this run: restarted (rolling) by their stage."""
    started: dict[str, set[str]] = field(default_factory=dict)
    """Units per host this run started: no need to restart them again for a file change."""
    changed_paths: dict[str, set[str]] = field(default_factory=dict)
    """Files per host whose content this run changed (stages apply some of them, e.g. the CIB script)."""
    timings: list[StageTiming] = field(default_factory=list)
    stop_requested: bool = False

    # -- running commands --------------------------------------------------------------
    async def run(self, host: str, argv: Sequence[str], step: str, *, stdin: bytes | None = None,
                  timeout: float = 120, check: bool = True) -> Result:
        """Run on a host; a failure becomes StepFailed with host, step, command, exit code, tail."""
        try:
            res = await self.transports[host].run(list(argv), stdin=stdin, timeout=timeout, check=False)
        except CommandError as exc:
            raise StepFailed(host, step, "", exc.result) from exc
        except HostError as exc:  # unreachable, timed out, connection lost
            raise StepFailed(host, step, exc.message, code="DEPLOY-HOST-UNREACHABLE") from exc
        if check and not res.ok:
            raise StepFailed(host, step, "", res)
        return res

    async def fact(self, host: str, fact: Fact[T], step: str) -> T:
        """Read a fact; a host or parse failure becomes StepFailed for this step."""
        try:
            return await gather(self.transports[host], fact)
        except CommandError as exc:
            raise StepFailed(host, step, "", exc.result) from exc
        except FactError as exc:
            raise StepFailed(host, step, exc.message, code="DEPLOY-READ-FAILED") from exc
        except HostError as exc:
            raise StepFailed(host, step, exc.message, code="DEPLOY-HOST-UNREACHABLE") from exc

    async def wait(self, host: str, step: str, probe: Callable[[], Awaitable[tuple[bool, object]]], *, what: str,
                   timeout: float, interval: float = 0.5) -> object:
        """Bounded polling (`deploy.wait.until`) whose timeout fails this step on this host."""
        try:
            return await until(probe, what=what, timeout=timeout, interval=interval)
        except GateTimeout as exc:
            raise StepFailed(host, step, str(exc), code="DEPLOY-GATE-TIMEOUT") from exc

    def changed(self, host: str, message: str) -> None:
        self.changes += 1
        self.emit(Event(self.stage, host, "change", message))

    def info(self, host: str, message: str) -> None:
        self.emit(Event(self.stage, host, "info", message))

    def checkpoint(self) -> None:
        if self.stop_requested:
            raise Interrupted(f"stopped by request before the next step of stage {self.stage}")

    # -- fan-out ----------------------------------------------------------------------
    async def each(self, nodes: Sequence[Node], fn: Callable[[Node], Awaitable[object]]) -> None:
        """Run fn on every node in parallel; collect every failure, raise them together."""
        results = await asyncio.gather(*(fn(n) for n in nodes), return_exceptions=True)
        failures = [r for r in results if isinstance(r, StepFailed)]
        others = [r for r in results if isinstance(r, BaseException) and not isinstance(r, StepFailed)]
        if others:
            raise others[0]
        if failures:
            raise StageFailed(self.stage, failures)

    async def rolling(self, nodes: Sequence[Node], fn: Callable[[Node], Awaitable[object]]) -> None:
        """One node at a time; stop at the first failure (the others keep running as they were)."""
        for n in nodes:
            self.checkpoint()
            try:
                await fn(n)
            except StepFailed as exc:
                raise StageFailed(self.stage, [exc]) from exc

    # -- the whole run ----------------------------------------------------------------
    async def execute(self, stages: Sequence[Stage]) -> list[StageTiming]:
        for st in stages:
            if not st.applies(self):
                continue
            self.checkpoint()
            self.stage = st.name
            self.emit(Event(st.name, "", "stage", f"stage {st.name}"))
            t0, c0 = time.monotonic(), self.changes
            try:
                await st.run(self)
            except StepFailed as exc:
                raise StageFailed(st.name, [exc]) from exc
            self.timings.append(StageTiming(st.name, time.monotonic() - t0, self.changes - c0))
            self.emit(Event(st.name, "", "ok", f"stage {st.name} healthy"))
        return self.timings

    def needs_restart(self, host: str, unit: str) -> bool:
        return unit in self.restarts.get(host, set()) and unit not in self.started.get(host, set())
