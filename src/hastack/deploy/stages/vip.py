"""Stage 4: memcached, HAProxy on every controller, keepalived; gate on exactly one VIP holder.

HAProxy and keepalived restart one controller at a time: the VIP moves at most once per
restart and the other controllers keep serving meanwhile.
"""

from __future__ import annotations

from hastack.components import keepalived
from hastack.deploy.engine import Deploy
from hastack.deploy.preview import gate, maybe, unit_steps
from hastack.deploy.systemd import ensure_running, reload_if_changed
from hastack.facts import HAProxyStats, addresses, show_stat
from hastack.facts.haproxy import ADMIN_SCRIPT, ADMIN_SOCKET, servers_state
from hastack.plan.steps import Step
from hastack.topology.model import Node


async def vip_holders(d: Deploy) -> list[str]:
    vip = d.topo.network.vip
    return [n.name for n in d.topo.controllers if (await d.fact(n.name, addresses(), "read addresses")).holds(vip)]


async def haproxy_stats(d: Deploy, host: str) -> HAProxyStats:
    return await d.fact(host, show_stat(), "read HAProxy stats")


class VipStage:
    name = "vip"

    def applies(self, d: Deploy) -> bool:
        return bool(d.topo.controllers)

    async def run(self, d: Deploy) -> None:
        ctls = d.topo.controllers
        await d.rolling(ctls, lambda n: self.unit(d, n, "memcached"))
        await d.rolling(ctls, lambda n: self.haproxy(d, n))
        # The quorum watch first: keepalived reads its verdict from the start.
        await d.each(ctls, lambda n: self.unit(d, n, keepalived.QUORUM_UNIT))
        # Restarted, not reloaded, for a changed configuration: keepalived 2.2.7 running its VRRP
        # process realtime kills that process after a reload ("child process cannot set realtime
        # rlimit", then SIGKILL from RLIMIT_RTTIME, 0-7 s later; seen on every reload in the lab,
        # 2026-12-06), and its respawn starts as a backup: the VIP moved twice where a restart of
        # the holder moves it once.
        await d.rolling(ctls, lambda n: self.unit(d, n, "keepalived"))
        await d.each(ctls, lambda n: self.unit(d, n, keepalived.GUARD_UNIT))
        await self.gate(d)

    async def preview(self, d: Deploy) -> list[Step]:
        ctls = d.topo.controllers
        one = ", one controller at a time"
        out: list[Step] = []
        for n in ctls:
            out += await unit_steps(d, self.name, n.name, ["memcached"], how=one)
        for n in ctls:  # as `haproxy`: reload or start, then its servers back in rotation
            out += await unit_steps(d, self.name, n.name, ["haproxy"], how=one, reload=["haproxy"])
            held = await maybe(d.fact(n.name, servers_state(), "read HAProxy's server states"))
            out += [Step(self.name, n.name, "change", f"{s.backend}/{s.server} back in rotation (it is in "
                                                      "maintenance or drain)")
                    for s in held or () if s.server in {c.name for c in ctls} and s.held_out]
        for unit, how in ((keepalived.QUORUM_UNIT, ""), ("keepalived", one), (keepalived.GUARD_UNIT, "")):
            for n in ctls:
                out += await unit_steps(d, self.name, n.name, [unit], how=how)
        return [*out, gate(self.name, "HAProxy answering on every controller, the VIP on exactly one, a Galera "
                                      "writer UP in every HAProxy")]

    async def unit(self, d: Deploy, node: Node, unit: str) -> None:
        await ensure_running(d, node.name, unit)

    async def haproxy(self, d: Deploy, node: Node) -> None:
        """A changed configuration is reloaded, not restarted: the new process takes the listening
        sockets over (`expose-fd listeners`) and the old one finishes the connections it holds, so
        the VIP holder's clients (every DB session, every API call in flight) are not cut. A changed
        backend list (a controller replaced) then costs nothing. `hard-stop-after` bounds how long
        the old process may keep long-lived connections."""
        if not await reload_if_changed(d, node.name, "haproxy"):
            # (after a reload the unit reads "reloading" for a moment: no start to add)
            await ensure_running(d, node.name, "haproxy")

        async def probe() -> tuple[bool, object]:
            stats = await haproxy_stats(d, node.name)
            return stats.available and bool(stats.rows), stats.error or f"{len(stats.rows)} rows"

        await d.wait(node.name, "gate: HAProxy", probe,
                     what=f"HAProxy on {node.name} to answer on its stats socket", timeout=30)
        await self.in_rotation(d, node)

    async def in_rotation(self, d: Deploy, node: Node) -> None:
        """Every controller of the topology in this HAProxy's rotation: a server an operator or
        `hastack retire` set to maintenance or drain keeps that state through its node's return
        (the state is HAProxy's, at run time), so it is set `ready` here; its checks then judge it."""
        names = {n.name for n in d.topo.controllers}
        held = [s for s in await d.fact(node.name, servers_state(), "read HAProxy's server states")
                if s.server in names and s.held_out]
        if not held:
            return
        line = "; ".join(f"set server {s.backend}/{s.server} state ready" for s in held)
        await d.run(node.name, ["python3", "-c", ADMIN_SCRIPT, ADMIN_SOCKET, line], "HAProxy: servers back in rotation")
        for svname in sorted({s.server for s in held}):
            pxs = ", ".join(s.backend for s in held if s.server == svname)
            d.changed(node.name, f"{svname} back in rotation in this HAProxy ({pxs}: it was in maintenance or drain)")

    async def gate(self, d: Deploy) -> None:
        async def one_holder() -> tuple[bool, object]:
            holders = await vip_holders(d)
            return len(holders) == 1, holders

        holders = await d.wait(d.topo.controllers[0].name, "gate: VIP", one_holder,
                               what="the VIP on exactly one controller", timeout=60)
        d.info(str(holders), f"VIP {d.topo.network.vip} is on {holders}")
        for n in d.topo.controllers:
            await self.galera_writer(d, n)

    async def galera_writer(self, d: Deploy, node: Node) -> None:
        """The Galera frontend must have exactly one active (non-backup) server UP."""
        async def probe() -> tuple[bool, object]:
            up = (await haproxy_stats(d, node.name)).up_servers("galera")
            return bool(up), f"galera servers up: {list(up)}"

        await d.wait(node.name, "gate: HAProxy Galera backend", probe,
                     what=f"a Galera writer UP in HAProxy on {node.name}", timeout=60)
