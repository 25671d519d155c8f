"""A controller's APIs out of HAProxy's rotation while deploy restarts them.

Without it, a rolling restart of an API costs its clients errors although two other controllers
serve it: the requests in flight when the unit stops end in HTTP 502, and the next ones reach a
closed port until the checks mark the server down (HAProxy then retries, 1 s apart). Measured on the
seed lab during a full rolling restart (`hastack rotate-secrets` under the drills' workloads,
2026-12-06): 74 of 1897 Keystone token requests and 2 of 759 network lists failed.

So before the units restart, every HAProxy sets that node's servers of those listeners to `drain`
(no new request; the ones in flight finish), and the restart waits, bounded, until none of them holds
a session. Once the API answers on the node's own address, they are `ready` again. Best effort, as it
must be: a HAProxy that is not running yet (a fresh deploy) or a socket that does not answer changes
nothing here, and `ready` is always sent, even when the restart fails (the checks judge the server).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from hastack.components import haproxy
from hastack.deploy.engine import Deploy, StepFailed
from hastack.facts.haproxy import ADMIN_SCRIPT, ADMIN_SOCKET, show_stat
from hastack.topology.model import Node

DRAIN_WAIT_S = 15.0
"""Longest wait for the requests in flight to finish (a token request takes well under a second;
a long one is cut at the restart as before)."""


def listeners_of(d: Deploy, units: Sequence[str]) -> list[str]:
    """HAProxy listeners whose servers are these units."""
    return [a.name for a in haproxy.apis(d.topo) if a.unit in units]


def balancers(d: Deploy) -> list[str]:
    return [n.name for n in d.topo.controllers if haproxy.COMPONENT.applies(d.topo, n)]


async def set_state(d: Deploy, node: Node, listeners: Sequence[str], state: str) -> None:
    """`set server <listener>/<node> state <state>` on every HAProxy in turn (one command line each, all
    listeners in it); failures tolerated."""
    line = "; ".join(f"set server {px}/{node.name} state {state}" for px in listeners)
    await admin(d, line, f"HAProxy: {node.name}'s {', '.join(listeners)} {state}")


async def admin(d: Deploy, line: str, step: str) -> None:
    """One admin-socket command line (`;`-separated commands) on every HAProxy in turn; failures
    tolerated (an unreachable balancer: its checks decide for it)."""
    for host in balancers(d):
        try:
            await d.run(host, ["python3", "-c", ADMIN_SCRIPT, ADMIN_SOCKET, line], step, timeout=20, check=False)
        except StepFailed as exc:
            d.info(host, f"{step}: not done there: {exc}")


async def sessions(d: Deploy, node: Node, listeners: Sequence[str]) -> int:
    """Sessions the node's servers of these listeners still hold, over every HAProxy that answers."""
    total = 0
    for host in balancers(d):
        try:
            stats = await d.fact(host, show_stat(), "read HAProxy's sessions")
        except StepFailed:
            continue
        for px in listeners:
            row = stats.server(px, node.name)
            total += int(row.fields.get("scur") or 0) if row is not None else 0
    return total


@asynccontextmanager
async def out_of_rotation(d: Deploy, node: Node, units: Sequence[str]) -> AsyncIterator[None]:
    """Drained around what the block does (the restart of `units` and the wait for them)."""
    listeners = listeners_of(d, units)
    if not listeners:
        yield
        return
    try:
        await drained(d, node, listeners, "restarting")
        yield
    finally:
        await set_state(d, node, listeners, "ready")


async def drained(d: Deploy, node: Node, listeners: Sequence[str], then: str) -> None:
    """The node's servers of these listeners set to `drain` on every HAProxy, then a bounded wait
    (DRAIN_WAIT_S) for their sessions to end; past it, `then` goes on with them open (said)."""
    await set_state(d, node, listeners, "drain")

    async def idle() -> tuple[bool, object]:
        left = await sessions(d, node, listeners)
        return left == 0, f"{left} session(s)"

    try:
        await d.wait(node.name, "drain HAProxy", idle, what=f"no session on {node.name}'s "
                     f"{', '.join(listeners)}", timeout=DRAIN_WAIT_S, interval=0.5)
    except StepFailed as exc:
        d.info(node.name, f"{then} with sessions still open: {exc}")
