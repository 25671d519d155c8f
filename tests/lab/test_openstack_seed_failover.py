"""Lab tier: the seed lab's OpenStack through real failures (runs after test_openstack_seed.py).

1. Power off the network node that runs the Pacemaker group: the other node fences it, starts the
   group, the L3, DHCP and metadata agents report again under the shared identity, and the tenant
   network's `qdhcp-*` / `qrouter-*` namespaces and its dnsmasq appear there.
(The controller holding the VIP powered off, with `server create` reaching ACTIVE meanwhile, is the
first half of `test_replace_seed.py`: that controller is then replaced instead of powered on again.)

Every test puts the lab back (power on, `hastack status` healthy, bounded polling) before it ends.
The times printed here are for the record; the benchmark figures come from `hastack drill`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seedcloud import (
    AGENT_HOST,
    NETWORK_NODES,
    agents_node,
    install_clouds_yaml,
    namespaces,
    on,
    osc,
    osc_quietly,
    power,
    status_healthy,
    until,
)

pytestmark = pytest.mark.lab

NAME = "hs-fo"
CLUSTERED = ("neutron-l3-agent", "neutron-dhcp-agent", "neutron-metadata-agent")
AGENTS = f"""
import json, openstack
c = openstack.connect(cloud="hastack")
print(json.dumps([{{"binary": a.binary, "alive": a.is_alive, "started_at": a.started_at}}
                  for a in c.network.agents(host="{AGENT_HOST}")]))
"""
"""The shared identity's agents in one client call (the `openstack` CLI would need one per agent
to show `started_at`)."""


@pytest.fixture(scope="module")
def tenant(seed_lab: Path) -> Iterator[dict[str, str]]:
    """cmp-1 with a clouds.yaml; a network with DHCP, a subnet and a router on it; removed after."""
    client = install_clouds_yaml()
    try:
        net = osc(client, "network", "create", f"{NAME}-net")
        osc(client, "subnet", "create", "--network", net["id"], "--subnet-range", "192.168.78.0/24", f"{NAME}-sub")
        router = osc(client, "router", "create", f"{NAME}-router")
        on(client, f"openstack --os-cloud hastack router add subnet {router['id']} {NAME}-sub")
        yield {"client": client, "net": net["id"], "router": router["id"]}
    finally:
        for argv in (["router", "remove", "subnet", f"{NAME}-router", f"{NAME}-sub"],
                     ["router", "delete", f"{NAME}-router"], ["network", "delete", f"{NAME}-net"]):
            osc_quietly(client, *argv)


def shared_agents(client: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(on(client, f"python3 -c '{AGENTS}'"))
    return rows


def dnsmasq_for(node: str, net_id: str) -> bool:
    return on(node, f"pgrep -f 'dnsmasq.*{net_id}' || true").strip() != ""


def tenant_on(node: str, t: dict[str, str]) -> bool:
    want = {f"qdhcp-{t['net']}", f"qrouter-{t['router']}"}
    return want <= namespaces(node) and dnsmasq_for(node, t["net"])


def test_power_off_active_network_node_moves_agents_namespaces_and_dnsmasq(tenant: dict[str, str]) -> None:
    client = tenant["client"]
    active = agents_node()
    other = next(n for n in NETWORK_NODES if n != active)
    until(f"the tenant's namespaces and dnsmasq on {active}", lambda: tenant_on(active, tenant), 180)
    assert not {f"qdhcp-{tenant['net']}", f"qrouter-{tenant['router']}"} & namespaces(other)

    off_at = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    t0 = time.monotonic()
    power(active, "off")
    try:
        moved = until(f"the group running on {other}", lambda: agents_node(ask=other) == other, 300)
        assert moved
        history = on(other, f"stonith_admin --history {active} --output-as=xml")
        assert re.search(rf'<fence_event [^>]*target="{active}"[^>]*status="success"', history) or \
            re.search(rf'<fence_event [^>]*status="success"[^>]*target="{active}"', history), history

        def restarted_alive() -> bool:
            rows = {r["binary"]: r for r in shared_agents(client)}
            return all(b in rows and rows[b]["alive"]
                       and dt.datetime.fromisoformat(rows[b]["started_at"]) >= off_at for b in CLUSTERED)

        until("the L3, DHCP and metadata agents alive again, started after the power-off", restarted_alive, 300)
        alive_s = time.monotonic() - t0
        until(f"the tenant's namespaces and dnsmasq on {other}", lambda: tenant_on(other, tenant), 180)
        print(f"power-off of {active} -> agents alive on {other}: {alive_s:.1f} s; "
              f"namespaces and dnsmasq there: {time.monotonic() - t0:.1f} s")
        rows = [r for r in shared_agents(client) if r["binary"] in CLUSTERED]
        assert sorted(r["binary"] for r in rows) == sorted(CLUSTERED)  # still once each, same identity
    finally:
        power(active, "on")  # fencing's reboot has usually done it already: then this changes nothing
        status_healthy()
    assert agents_node() == other  # resource stickiness: the group does not move back
