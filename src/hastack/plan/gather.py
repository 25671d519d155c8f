"""Read what a host has (files, packages, units) and turn it into a per-host plan. Reads only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hastack.components.base import Desired
from hastack.facts import file_state, gather, packages, units
from hastack.plan.files import Actual, FileChange, compare, diff
from hastack.transport.base import Transport


@dataclass
class HostPlan:
    host: str
    files: list[FileChange] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    """Units the node should run that are not active now: their stage starts them."""
    diffs: dict[str, str] = field(default_factory=dict)

    @property
    def changed_files(self) -> list[FileChange]:
        return [c for c in self.files if c.changed]

    @property
    def restarts(self) -> set[str]:
        return {u for c in self.files if c.content_changed for u in c.file.restarts}


async def actual_files(t: Transport, paths: list[str]) -> dict[str, Actual]:
    states = await gather(t, file_state(paths)) if paths else {}
    return {p: Actual(s.sha256 if s.exists else None, s.owner, s.group, s.mode) for p, s in states.items()}


async def missing_packages(t: Transport, names: list[str]) -> list[str]:
    have = await gather(t, packages(names)) if names else {}
    return [p for p in names if not (p in have and have[p].installed)]


async def inactive_units(t: Transport, names: list[str]) -> list[str]:
    states = await gather(t, units(names)) if names else {}
    return [u for u in names if not states[u].active]


async def host_plan(t: Transport, desired: Desired, *, with_diffs: bool = False,
                    masker: Callable[[str], str] | None = None) -> HostPlan:
    plan = HostPlan(t.host, compare(t.host, desired.files, await actual_files(t, [f.path for f in desired.files])),
                    await missing_packages(t, desired.packages), await inactive_units(t, desired.units))
    if with_diffs:
        for c in plan.changed_files:
            if c.content_changed:
                old = None if c.action == "create" or c.file.secret else await t.get(c.file.path)
                text = old.decode(errors="replace") if old is not None else None
                plan.diffs[c.file.path] = diff(c, text, masker)
    return plan
