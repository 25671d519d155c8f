"""A controller's APIs out of HAProxy's rotation around their restart (`deploy/drain.py`), against a
scripted transport: every balancer told, the restart waits for the sessions in flight, and the
servers are back in rotation whatever happened in between."""

from __future__ import annotations

import asyncio

import pytest

from conftest import FixedSecrets
from hastack.components.base import Ctx
from hastack.components.registry import desired
from hastack.deploy.drain import out_of_rotation
from hastack.deploy.engine import Deploy
from hastack.facts.haproxy import ADMIN_SCRIPT, SHOW_STAT_SCRIPT
from hastack.topology.model import Topology
from hastack.transport.base import Result
from hastack.transport.fake import Script, on_prefix

HEADER = "# pxname,svname,scur,status,type\n"


def scripted(seed: Topology, scur: list[int]) -> tuple[Deploy, list[tuple[str, str]]]:
    """Balancers that report `scur[i]` sessions on ctl-2's keystone server at the i-th read of each."""
    sent: list[tuple[str, str]] = []
    reads: dict[str, int] = {}

    def admin(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        sent.append((h, argv[-1]))
        return Result(h, argv, 0, "", "")

    def stat(h: str, argv: tuple[str, ...], stdin: bytes | None) -> Result:
        i = reads[h] = reads.get(h, -1) + 1
        n = scur[min(i, len(scur) - 1)]
        return Result(h, argv, 0, HEADER + f"keystone,ctl-2,{n},DRAIN,2\n", "")

    s = Script().add(on_prefix("python3", "-c", ADMIN_SCRIPT, times=None, respond=admin),
                     on_prefix("python3", "-c", SHOW_STAT_SCRIPT, times=None, respond=stat))
    ctx = Ctx(seed, FixedSecrets(None))
    return Deploy(seed, desired(ctx), dict(s.fleet(*[n.name for n in seed.nodes])), ctx.secrets), sent


def test_drained_on_every_balancer_until_idle_then_ready(seed: Topology) -> None:
    d, sent = scripted(seed, [2, 1, 0])
    inside: list[list[tuple[str, str]]] = []

    async def go() -> None:
        async with out_of_rotation(d, seed.node("ctl-2"), ["keystone"]):
            inside.append(list(sent))

    asyncio.run(go())
    balancers = ["ctl-1", "ctl-2", "ctl-3"]
    assert inside == [[(b, "set server keystone/ctl-2 state drain") for b in balancers]]
    assert sent[3:] == [(b, "set server keystone/ctl-2 state ready") for b in balancers]


def test_back_in_rotation_when_the_restart_fails(seed: Topology) -> None:
    d, sent = scripted(seed, [0])

    async def go() -> None:
        async with out_of_rotation(d, seed.node("ctl-1"), ["keystone", "nova-conductor"]):
            raise RuntimeError("the restart failed")

    with pytest.raises(RuntimeError):
        asyncio.run(go())
    assert [line for _, line in sent][-3:] == ["set server keystone/ctl-1 state ready"] * 3


def test_nothing_to_drain_without_an_api_to_restart(seed: Topology) -> None:
    d, sent = scripted(seed, [0])

    async def go() -> None:
        async with out_of_rotation(d, seed.node("ctl-1"), ["nova-conductor"]):
            pass

    asyncio.run(go())
    assert sent == []
