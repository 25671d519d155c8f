"""Stage 4: memcached, HAProxy on every controller, keepalived; gate on exactly one VIP holder.

HAProxy and keepalived restart one controller at a time: the VIP moves at most once per
restart and the other controllers keep serving meanwhile.
"""

from __future__ import annotations

import csv
import io
import json

from hastack.deploy.engine import Deploy, StepFailed
from hastack.deploy.systemd import ensure_running
from hastack.deploy.wait import GateTimeout, until
from hastack.topology.model import Node

STATS_SOCKET = "/run/haproxy/admin.sock"
SHOW_STAT = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
while chunk := s.recv(65536):
    sys.stdout.write(chunk.decode())
"""


def parse_addresses(stdout: str) -> set[str]:
    """`ip -j -4 addr show` -> every IPv4 address the host holds."""
    return {a["local"] for link in json.loads(stdout or "[]") for a in link.get("addr_info", []) if "local" in a}


def parse_show_stat(stdout: str) -> list[dict[str, str]]:
    """HAProxy `show stat` CSV (header starts with '# ') -> rows."""
    text = stdout.lstrip("# ")
    return [row for row in csv.DictReader(io.StringIO(text)) if row.get("pxname")]


async def addresses(d: Deploy, host: str) -> set[str]:
    res = await d.run(host, ["ip", "-j", "-4", "addr", "show"], "read addresses", timeout=10)
    return parse_addresses(res.stdout)


async def vip_holders(d: Deploy) -> list[str]:
    vip = str(d.topo.network.vip)
    return [n.name for n in d.topo.controllers if vip in await addresses(d, n.name)]


async def haproxy_stats(d: Deploy, host: str) -> list[dict[str, str]]:
    res = await d.run(host, ["python3", "-c", SHOW_STAT, STATS_SOCKET], "read HAProxy stats", timeout=10)
    return parse_show_stat(res.stdout)


class VipStage:
    name = "vip"

    def applies(self, d: Deploy) -> bool:
        return bool(d.topo.controllers)

    async def run(self, d: Deploy) -> None:
        ctls = d.topo.controllers
        await d.rolling(ctls, lambda n: self.unit(d, n, "memcached"))
        await d.rolling(ctls, lambda n: self.haproxy(d, n))
        await d.rolling(ctls, lambda n: self.unit(d, n, "keepalived"))
        await self.gate(d)

    async def unit(self, d: Deploy, node: Node, unit: str) -> None:
        await ensure_running(d, node.name, unit)

    async def haproxy(self, d: Deploy, node: Node) -> None:
        await ensure_running(d, node.name, "haproxy")

        async def probe() -> tuple[bool, object]:
            rows = await haproxy_stats(d, node.name)
            return bool(rows), f"{len(rows)} proxies"

        try:
            await until(probe, what=f"HAProxy on {node.name} to answer on its stats socket", timeout=30)
        except GateTimeout as exc:
            raise StepFailed(node.name, "gate: HAProxy", str(exc)) from exc

    async def gate(self, d: Deploy) -> None:
        async def one_holder() -> tuple[bool, object]:
            holders = await vip_holders(d)
            return len(holders) == 1, holders

        try:
            holders = await until(one_holder, what="the VIP on exactly one controller", timeout=60)
        except GateTimeout as exc:
            raise StepFailed(d.topo.controllers[0].name, "gate: VIP", str(exc)) from exc
        d.info(str(holders), f"VIP {d.topo.network.vip} is on {holders}")
        for n in d.topo.controllers:
            await self.galera_writer(d, n)

    async def galera_writer(self, d: Deploy, node: Node) -> None:
        """The Galera frontend must have exactly one active (non-backup) server UP."""
        async def probe() -> tuple[bool, object]:
            rows = [r for r in await haproxy_stats(d, node.name)
                    if r["pxname"] == "galera" and r["svname"] not in ("FRONTEND", "BACKEND")]
            up = [r["svname"] for r in rows if r.get("status", "").startswith("UP")]
            return bool(up), f"galera servers up: {up}"

        try:
            await until(probe, what=f"a Galera writer UP in HAProxy on {node.name}", timeout=60)
        except GateTimeout as exc:
            raise StepFailed(node.name, "gate: HAProxy Galera backend", str(exc)) from exc
