"""`hastack deploy` and `hastack plan`: connect, gather facts, show or apply the stages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hastack.components.base import Ctx, Desired
from hastack.components.registry import desired
from hastack.deploy.engine import Deploy, Event, Stage, StageTiming
from hastack.deploy.stages.files import FilesStage, note_changes
from hastack.deploy.stages.galera import GaleraStage
from hastack.deploy.stages.logins import LoginsStage
from hastack.deploy.stages.openstack import OpenStackStage
from hastack.deploy.stages.pacemaker import CorosyncStage, PacemakerStage
from hastack.deploy.stages.rabbitmq import RabbitMQStage
from hastack.deploy.stages.vip import VipStage
from hastack.plan.gather import HostPlan, host_plan
from hastack.plan.steps import Step
from hastack.secrets import mask
from hastack.transport.base import HostError, HostUnreachable, Transport
from hastack.transport.fleet import Unreachable


def stages() -> list[Stage]:
    """Deploy order: each stage's gate is what the next one relies on."""
    return [FilesStage(), GaleraStage(), RabbitMQStage(), VipStage(), CorosyncStage(), OpenStackStage(),
            PacemakerStage(), LoginsStage()]


STAGE_NAMES = [s.name for s in stages()]


@dataclass
class DeployResult:
    changes: int
    timings: list[StageTiming] = field(default_factory=list)


async def deploy(ctx: Ctx, transports: dict[str, Transport], emit: Callable[[Event], None],
                 only: Sequence[str] | None = None, stop: asyncio.Event | None = None) -> DeployResult:
    d = Deploy(ctx.topo, desired(ctx), transports, ctx.secrets, emit)
    chosen = [s for s in stages() if not only or s.name in only]

    async def watch_stop() -> None:
        if stop is not None:
            await stop.wait()
            d.stop_requested = True

    watcher = asyncio.ensure_future(watch_stop())
    try:
        await d.execute(chosen)
    finally:
        watcher.cancel()
        ctx.secrets.save()
    return DeployResult(d.changes, d.timings)


@dataclass
class PlanResult:
    hosts: dict[str, HostPlan]
    errors: dict[str, str]
    new_secrets: list[str] = field(default_factory=list)
    """Secrets the deploy would generate (none are written by the plan)."""
    steps: list[Step] = field(default_factory=list)
    """Every stage's steps beyond files and packages, in deploy order (`plan/steps.py`)."""


async def preview(ctx: Ctx, want: dict[str, Desired], transports: dict[str, Transport],
                  hosts: dict[str, HostPlan], only: Sequence[str] | None = None) -> list[Step]:
    """The steps of the stages deploy runs (all, or `only` these), as each stage's preview reads them
    now: the file changes the plan found are noted as the files stage notes them, so the restarts
    they ask for appear where deploy makes them."""
    d = Deploy(ctx.topo, want, transports, ctx.secrets)
    for hp in hosts.values():
        note_changes(d, hp)
    out: list[Step] = []
    for st in stages():
        if (not only or st.name in only) and st.applies(d):
            out += await st.preview(d)
    return out


async def plan(ctx: Ctx, transports: dict[str, Transport], only: Sequence[str] | None = None) -> PlanResult:
    """What `deploy` (of all stages, or `only` these) would do now. Without the files stage, no file
    or package is written, so none is planned."""
    want = desired(ctx)

    async def one(name: str) -> HostPlan | str:
        try:
            return await host_plan(transports[name], want[name], with_diffs=True,
                                   masker=lambda text: mask(text, ctx.secrets))
        except HostError as exc:
            return exc.message

    results = await asyncio.gather(*(one(n) for n in want))
    hosts = {n: r for n, r in zip(want, results, strict=True) if isinstance(r, HostPlan)}
    errors = {n: r for n, r in zip(want, results, strict=True) if isinstance(r, str)}
    # A plan changes nothing, the secrets file included: secrets it had to invent for the render
    # are named in the result, and deploy generates (and keeps) its own.
    if only and FilesStage.name not in only:
        hosts = {n: HostPlan(n) for n in hosts}
    # A host that could not be read is not read again by the stages (each read would wait for a
    # reconnect): deploy stops at it anyway, which the plan says; its steps are not listed.
    reachable = {n: t if n not in errors else Unreachable(HostUnreachable(n, errors[n])) for n, t in transports.items()}
    steps = [st for st in await preview(ctx, want, reachable, hosts, only) if st.host not in errors]
    return PlanResult(hosts, errors, ctx.secrets.unsaved(), steps)
