"""`hastack rotate-keys`: Keystone's Fernet token keys (or, with --credentials, its credential-encryption
keys) rotated on every Keystone node, no valid token refused and no credential left unreadable.

The rotation is a change of the truth (the secrets file) followed by writing that kind's key files, and
only those, in their write order (why that order is safe: `components/keystone.py`). Before it, every
Keystone node must hold exactly the keys the secrets name: the key about to become primary must already
be staged everywhere, or what it signs or encrypts would be refused by a node that lacks it. After it,
the same check proves every node holds the new set. Credential keys then need every stored credential
re-encrypted with the new primary (`keystone-manage credential_migrate`, on one node) before the next
rotation may drop the secondary.
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


def fernet_files(ctx: Ctx, credentials: bool = False) -> list[File]:
    """One kind's key files as every Keystone node gets them (the same on each), in write order:
    the Fernet token keys, or with `credentials` the credential-encryption keys."""
    paths = keystone.credential_paths(ctx.secrets) if credentials else keystone.fernet_paths()
    by_path = {f.path: f for f in keystone.key_files(ctx)}
    return [by_path[p] for p in paths]


async def key_drift(ctx: Ctx, transports: dict[str, Transport], credentials: bool = False) -> list[Drift]:
    """Every Keystone node whose key files of that kind differ from the secrets (content, owner or
    mode), or that cannot be read. Empty: every node holds exactly the current keys."""
    files = fernet_files(ctx, credentials)

    async def one(name: str) -> Drift | None:
        try:
            hp = await host_plan(transports[name], Desired(ctx.topo.node(name), files))
        except HostError as exc:
            return Drift(name, (), exc.message)
        changed = tuple(c.file.path for c in hp.changed_files)
        return Drift(name, changed) if changed else None

    found = await asyncio.gather(*(one(n) for n in keystone_nodes(ctx)))
    return [d for d in found if d is not None]


async def write_keys(ctx: Ctx, transports: dict[str, Transport], credentials: bool = False) -> list[Drift]:
    """Write the secrets' keys of that kind to every Keystone node, each node's files in write order
    (the nodes in parallel: any mix of old and new nodes is safe). Returns the nodes a write failed on."""
    files = fernet_files(ctx, credentials)

    async def one(name: str) -> Drift | None:
        for f in files:
            try:
                await put_file(transports[name], f)
            except HostError as exc:
                return Drift(name, (f.path,), exc.message)
        return None

    failed = await asyncio.gather(*(one(n) for n in keystone_nodes(ctx)))
    return [d for d in failed if d is not None]


MIGRATE = ("runuser", "-u", "keystone", "--", "keystone-manage", "credential_migrate")


async def migrate_credentials(ctx: Ctx, transports: dict[str, Transport]) -> Drift | None:
    """Every stored credential re-encrypted with the primary key, on the first Keystone node (the
    database is shared); None when it completed. Only once every node holds the new keys: a node
    without the new primary could not decrypt what the migrate writes."""
    name = keystone_nodes(ctx)[0]
    try:
        res = await transports[name].run(list(MIGRATE), timeout=600, check=False)
    except HostError as exc:
        return Drift(name, (), exc.message)
    if res.exit_status != 0:
        tail = " ".join((res.stdout + res.stderr).strip().splitlines()[-3:])
        return Drift(name, (), f"keystone-manage credential_migrate exited {res.exit_status}: {tail}")
    return None
