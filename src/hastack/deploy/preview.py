"""Helpers for the stages' `preview`: read without failing, and say what `ensure_units` would do.

A preview reads through the same `Deploy` reads a run uses (`d.fact`, `unit_states`), but a read
that fails is an unknown, not a stop: the step it decides is shown as conditional.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TypeVar

from hastack.deploy.engine import Deploy, StepFailed
from hastack.deploy.systemd import unit_states
from hastack.plan.steps import Step
from hastack.transport.base import HostError

T = TypeVar("T")


async def maybe(aw: Awaitable[T]) -> T | None:
    """The read's answer, or None when the host or the command did not give one."""
    try:
        return await aw
    except StepFailed:
        return None


async def maybe_get(d: Deploy, host: str, path: str) -> bytes | None:
    """A file's content as the run's `get` reads it, or None when it is missing or the host does
    not answer."""
    try:
        return await d.transports[host].get(path)
    except HostError:
        return None


async def unit_steps(d: Deploy, stage: str, host: str, names: Sequence[str], *, how: str = "",
                     reload: Sequence[str] = (), starts: bool = True, restarts: bool = True) -> list[Step]:
    """What `ensure_units` will do to these units on this host: enable, start the stopped ones,
    restart (or, for `reload`, reload) the running ones whose files this deploy changes. `how`
    says how the stage runs them (', one controller at a time'); `starts` / `restarts` False leave
    out that half (a stage that starts and restarts in two passes)."""
    if not names:
        return []
    states = await maybe(unit_states(d, host, list(names)))
    if states is None:
        return [Step(stage, host, "check", f"{', '.join(names)}: could not read their state now; deploy starts "
                                           f"or restarts them as needed{how}")]
    out = []
    for u in names:
        s = states[u]
        # ensure_units enables in the pass that starts; a unit its package brings enables itself
        # when it is installed (only its start is certain then)
        enable = "" if s.enabled or not s.exists else "enable and "
        if not s.active:
            if starts:
                out.append(Step(stage, host, "change", f"{enable}start {u}{how}"))
            continue
        restart = restarts and d.needs_restart(host, u)
        if restart and u in reload:  # reload_if_changed: a reload only, nothing enabled
            out.append(Step(stage, host, "change", f"reload {u} (its configuration changes: the new process takes "
                                                   f"the sockets over, the old one ends its connections){how}"))
        elif restart:
            out.append(Step(stage, host, "change", f"{enable if starts else ''}restart {u} (its configuration "
                                                   f"changes){how}"))
        elif enable and starts:
            out.append(Step(stage, host, "change", f"enable {u}"))
    return out


def gate(stage: str, text: str) -> Step:
    return Step(stage, "", "check", f"gate: {text}")
