"""`hastack rotate-keys`: Keystone's Fernet token keys rotated on every Keystone node, no valid token refused.

The rotation is a change of the truth (the secrets file) followed by writing the Fernet key files, and
only those, in `keystone.FERNET_ORDER` (why that order is safe: `components/keystone.py`). Before it,
every Keystone node must hold exactly the keys the secrets name: the key about to become primary must
already be staged everywhere, or a token it signs would be refused by a node that lacks it. After it,
the same check proves every node holds the new set.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hastack.components import keystone
from hastack.components.base import Ctx, Desired, File
from hastack.deploy.engine import put_file
from hastack.plan.gather import host_plan
from hastack.transport.base import HostError, Transport


@dataclass(frozen=True)
class Drift:
    """A Keystone node whose Fernet keys are not what the secrets say."""

    host: str
    paths: tuple[str, ...]
    error: str | None = None

    def render(self) -> str:
        if self.error is not None:
            where = f" ({', '.join(self.paths)})" if self.paths else ""
            return f"{self.host}{where}: {self.error}"
        return f"{self.host}: {', '.join(self.paths)} not as in the secrets file"


def keystone_nodes(ctx: Ctx) -> list[str]:
    return [n.name for n in ctx.topo.nodes if keystone.COMPONENT.applies(ctx.topo, n)]


def fernet_files(ctx: Ctx) -> list[File]:
    """The Fernet key files as every Keystone node gets them (the same on each), in FERNET_ORDER."""
    paths = keystone.fernet_paths()
    return [f for f in keystone.key_files(ctx) if f.path in paths]


async def key_drift(ctx: Ctx, transports: dict[str, Transport]) -> list[Drift]:
    """Every Keystone node whose Fernet key files differ from the secrets (content, owner or mode), or
    that cannot be read. Empty: every node holds exactly the current keys."""
    files = fernet_files(ctx)

    async def one(name: str) -> Drift | None:
        try:
            hp = await host_plan(transports[name], Desired(ctx.topo.node(name), files))
        except HostError as exc:
            return Drift(name, (), exc.message)
        changed = tuple(c.file.path for c in hp.changed_files)
        return Drift(name, changed) if changed else None

    found = await asyncio.gather(*(one(n) for n in keystone_nodes(ctx)))
    return [d for d in found if d is not None]


async def write_keys(ctx: Ctx, transports: dict[str, Transport]) -> list[Drift]:
    """Write the secrets' Fernet keys to every Keystone node, each node's files in FERNET_ORDER (the
    nodes in parallel: any mix of old and new nodes is safe). Returns the nodes a write failed on."""
    files = fernet_files(ctx)

    async def one(name: str) -> Drift | None:
        for f in files:
            try:
                await put_file(transports[name], f)
            except HostError as exc:
                return Drift(name, (f.path,), exc.message)
        return None

    failed = await asyncio.gather(*(one(n) for n in keystone_nodes(ctx)))
    return [d for d in failed if d is not None]
