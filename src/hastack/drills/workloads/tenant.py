"""The tenant's data plane a network-node drill watches: one network with DHCP and one router on it.

A drill that powers off the network node running the agents must show when the tenant is served
again, not only when the agents say they are alive: the router's gateway address up in its
namespace and dnsmasq listening on the survivor (read on the nodes by the watcher, see
`drills.observe`). This workload makes sure there is something to serve. Before the drill it finds
or creates, through the VIP (Neutron's API, the admin project), a network, a subnet with DHCP and a
router with an interface on it, all named `hastack-drill`, and waits until Neutron reports their
ports ACTIVE (the L2 agent bound them, so the namespaces are built). They stay for the next drill,
like the drills' table and queue.

The subnet is 192.0.2.0/24 (TEST-NET-1, RFC 5737: an address block for documentation that no real
network uses); it exists only inside the tenant network's VXLAN segment and the namespaces.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from hastack.drills.samples import Recorder
from hastack.drills.workloads.base import Credentials, Endpoints
from hastack.drills.workloads.http import KeystoneTokens

NAME = "hastack-drill"
CIDR, GATEWAY = "192.0.2.0/24", "192.0.2.1"
READY_TIMEOUT_S, READY_POLL_S = 120.0, 2.0
OWNERS = ("network:router_interface", "network:dhcp")


class TenantNetwork:
    """Prepare-only workload: finds or creates the drill's network, subnet and router."""

    name = "tenant"

    def __init__(self, ep: Endpoints, creds: Credentials, timeout: float = 10.0,
                 ready_timeout: float = READY_TIMEOUT_S, poll: float = READY_POLL_S) -> None:
        assert ep.neutron_port is not None
        self.base = ep.url(ep.neutron_port, "/v2.0")
        self.keystone = KeystoneTokens(ep, creds, NAME, timeout=timeout, workers=1)
        self.client = ep.http_client(timeout, 1)
        self.ready_timeout, self.poll = ready_timeout, poll
        self.ids: dict[str, str] = {}

    def _call(self, method: str, path: str, token: str, body: dict[str, Any] | None = None,
              params: dict[str, str] | None = None) -> dict[str, Any]:
        resp = self.client.request(method, f"{self.base}{path}", json=body, params=params,
                                   headers={"X-Auth-Token": token})
        if resp.status_code not in (200, 201):
            raise RuntimeError(f"{method} {path}: HTTP {resp.status_code}: {resp.text[:200]}")
        data: dict[str, Any] = resp.json()
        return data

    def _ensure(self, token: str, kind: str, query: dict[str, str], create: dict[str, Any]) -> str:
        """The id of the one object of `kind` matching `query`, created when there is none."""
        found = self._call("GET", f"/{kind}s", token, params=query)[f"{kind}s"]
        if len(found) > 1:
            raise RuntimeError(f"{len(found)} {kind}s named {NAME}: delete the extra ones")
        if found:
            return str(found[0]["id"])
        return str(self._call("POST", f"/{kind}s", token, {kind: create})[kind]["id"])

    def prepare(self) -> None:
        try:
            token = self.keystone.login()
            net = self._ensure(token, "network", {"name": NAME}, {"name": NAME})
            subnet = self._ensure(token, "subnet", {"name": NAME, "network_id": net},
                                  {"name": NAME, "network_id": net, "ip_version": 4, "cidr": CIDR,
                                   "gateway_ip": GATEWAY, "enable_dhcp": True})
            router = self._ensure(token, "router", {"name": NAME}, {"name": NAME})
            attached = self._call("GET", "/ports", token, params={"device_id": router, "network_id": net})["ports"]
            if not attached:
                self._call("PUT", f"/routers/{router}/add_router_interface", token, {"subnet_id": subnet})
            self.ids = {"network": net, "subnet": subnet, "router": router}
            self.wait_active(token, net)
        finally:
            self.client.close()
            self.keystone.client.close()

    def wait_active(self, token: str, net: str) -> None:
        """Bounded: every router-interface and DHCP port of the network ACTIVE, at least one of each."""
        deadline = time.monotonic() + self.ready_timeout
        states: dict[str, str] = {}
        for _ in range(int(self.ready_timeout / self.poll) + 2):
            ports = self._call("GET", "/ports", token, params={"network_id": net})["ports"]
            states = {f"{p['device_owner']} {p['id'][:8]}": p["status"] for p in ports if p["device_owner"] in OWNERS}
            if all(any(k.startswith(o) for k in states) for o in OWNERS) and set(states.values()) == {"ACTIVE"}:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(self.poll)
        raise RuntimeError(f"the drill's router and DHCP ports are not ACTIVE after {self.ready_timeout:.0f} s: "
                           f"{states or 'none'}")

    def run(self, rec: Recorder, stop: threading.Event, duration: float) -> None:
        rec.check("tenant", dict(self.ids))

    def verify(self, rec: Recorder) -> None:
        pass

