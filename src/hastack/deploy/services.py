"""OpenStack's services as deploy and recover both see them: which units a node runs, the APIs' URLs
and the wait for them, the host-side admin tool (agents/openstack_admin.py) and the service-list gates.
The openstack stage builds the cloud with these; `recover all` and the Pacemaker stage's gate reuse
them without reaching into the stage."""


from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hastack.agents import openstack_admin
from hastack.components import haproxy, keystone, neutron
from hastack.components import openstack as os_
from hastack.components.registry import component
from hastack.deploy.engine import Deploy, StepFailed
from hastack.deploy.wait import GateTimeout, until
from hastack.facts.system import http_codes
from hastack.topology.model import Node, ServiceName, Topology

COMPONENTS: tuple[ServiceName, ...] = ("keystone", "glance", "placement", "nova", "neutron", "cinder", "heat",
                                      "telemetry")
"""The OpenStack components whose units the openstack stage starts (the others belong to earlier stages)."""

TOOL = "/usr/local/lib/hastack/openstack-admin"
TOOL_SOURCE = Path(openstack_admin.__file__)

LISTENERS = r"""for a do
  pid=$(ss -ltnpH "src ${a%:*} and sport = :${a##*:}" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1)
  if [ -z "$pid" ]; then echo "$a: nothing listens"; continue; fi
  unit=$(sed -n 's#^0::.*/\([^/]*\.service\)$#\1#p' /proc/$pid/cgroup)
  echo "$a: pid $pid, $unit $(systemctl show -p ActiveState -p SubState -p NRestarts "$unit" | tr '\n' ' ')"
  journalctl -u "$unit" -n 3 --no-pager -o short-monotonic | sed 's/^/    /'
  for log in /var/log/*/"${unit%.service}".log; do
    [ -f "$log" ] && tail -n 5 "$log" | cut -c 1-300 | sed "s|^|    $log: |"
  done
done
"""
"""Why a port does not answer: who listens on it, that unit's state, its last journal lines and the
last lines of its own log (uWSGI writes there, not to the journal)."""

API_TIMEOUT = 300.0
"""A cold controller's APIs answer after ~25 s alone; on a loaded 2-core lab give them minutes."""


def first(d: Deploy) -> str:
    return d.topo.controllers[0].name


def service_units(topo: Topology, node: Node, *, skip: tuple[str, ...] = ()) -> list[str]:
    """The node's OpenStack units, as each component lists them (never Pacemaker's agents)."""
    out: list[str] = []
    for name in COMPONENTS:
        if name in skip or not topo.runs(name):
            continue
        comp = component(name)
        if comp.applies(topo, node):
            out += [u for u in comp.units(topo, node) if u not in out]
    return out


def api_urls(topo: Topology, address: str) -> list[tuple[str, int]]:
    """(URL, expected status) of every API of the topology on one controller's own address (plain
    HTTP, as HAProxy's checks ask it)."""
    return [(f"http://{address}:{a.port}{a.check_uri}", a.status) for a in haproxy.apis(topo)]


def vip_api_urls(topo: Topology) -> list[tuple[str, int]]:
    """The same pages through HAProxy on the VIP (https unless the topology turned TLS off)."""
    return [(topo.vip_url(a.port, a.check_uri), a.status) for a in haproxy.apis(topo)]


# -- units ------------------------------------------------------------------------------------------
async def wait_http(d: Deploy, host: str, urls: list[tuple[str, int]], what: str, *,
                    timeout: float = API_TIMEOUT) -> None:
    """Until every URL answers its status, asked from `host` itself."""
    want = dict(urls)
    silent: list[str] = list(want)

    async def probe() -> tuple[bool, object]:
        got = await d.fact(host, http_codes(list(want)), f"probe {what}")
        bad = {u: got.get(u, "?") for u, code in want.items() if got.get(u) != str(code)}
        silent[:] = list(bad)
        return not bad, ", ".join(f"{u} -> {c}" for u, c in bad.items()) or "all answered"

    try:
        await until(probe, what=what, timeout=timeout, interval=2)
    except GateTimeout as exc:
        bad = sorted({urllib.parse.urlsplit(u).netloc for u in silent or want})
        why = await d.run(host, ["sh", "-c", LISTENERS, "sh", *bad], "which units listen", check=False)
        raise StepFailed(host, f"gate: {what}", f"{exc}\n{why.stdout.rstrip()}", code="DEPLOY-GATE-TIMEOUT") from exc


# -- the admin tool ---------------------------------------------------------------------------------
async def install_tool(d: Deploy, host: str) -> None:
    data = TOOL_SOURCE.read_bytes()
    t = d.transports[host]
    if await t.get(TOOL) == data:
        return
    await t.put(TOOL, data, owner="root", group="root", mode=0o755)
    d.changed(host, f"installed {TOOL}")


def auth_spec(d: Deploy) -> dict[str, Any]:
    return {"auth_url": d.topo.vip_url(os_.KEYSTONE_PORT, "/v3"),
            "admin_password": d.secrets.password(keystone.ADMIN_SECRET), "region": d.topo.openstack.region}


async def admin(d: Deploy, host: str, mode: str, spec: dict[str, Any], step: str, timeout: float) -> Any:
    """Run the tool on `host` with the spec (and its passwords) on stdin; its JSON answer."""
    await install_tool(d, host)
    res = await d.run(host, ["python3", TOOL, mode], step, stdin=json.dumps(spec).encode(), timeout=timeout)
    try:
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise StepFailed(host, step, "the tool printed no JSON answer", res) from exc


@dataclass(frozen=True)
class Expect:
    service: str
    """Catalog type of the API that lists it: compute, network, volumev3, orchestration."""
    binary: str
    host: str

    def spec(self) -> dict[str, str]:
        return {"service": self.service, "binary": self.binary, "host": self.host}


def expectations(topo: Topology) -> list[Expect]:
    """What must be up once this stage is done (the Pacemaker agents come with the next stage)."""
    ctls, computes = topo.controllers, topo.computes
    out: list[Expect] = []
    if topo.runs("nova"):
        out += [Expect("compute", b, n.name) for n in ctls for b in ("nova-scheduler", "nova-conductor")]
        out += [Expect("compute", "nova-compute", n.name) for n in computes]
    if topo.runs("neutron"):
        l2 = neutron.l2_unit(topo)
        if topo.network_nodes and l2 not in neutron.cluster_units(topo):
            out.append(Expect("network", l2, topo.openstack.agent_host))  # both network nodes, one identity
        out += [Expect("network", l2, n.name) for n in computes]
    if topo.runs("cinder"):
        out += [Expect("volumev3", "cinder-scheduler", n.name) for n in ctls]
    if topo.runs("heat"):
        out += [Expect("orchestration", "heat-engine", n.name) for n in ctls]
    return out


def cluster_expectations(topo: Topology) -> list[Expect]:
    """The agents Pacemaker runs: alive once, under the shared agent identity (none without Neutron
    or network nodes: a Keystone-only cloud has no network API to ask)."""
    if not (topo.runs("neutron") and topo.network_nodes):
        return []
    agents = [u.removesuffix(".service") for u in neutron.cluster_units(topo)]
    return [Expect("network", a, topo.openstack.agent_host) for a in agents if a.startswith("neutron-")]


async def api_gate(d: Deploy, expect: list[Expect], what: str, timeout: float = 300, *,
                   host: str | None = None) -> None:
    """Poll the service lists through the VIP from `host` (the first controller) until every row is up."""
    host = host or first(d)
    spec = {**auth_spec(d), "expect": [e.spec() for e in expect], "timeout": timeout}
    answer = await admin(d, host, "gate", spec, f"gate: {what}", timeout=timeout + 120)
    if not answer.get("ok"):
        seen = "; ".join(f"{k}: {v}" for k, v in answer.get("seen", {}).items())
        raise StepFailed(host, f"gate: {what}", f"not up after {timeout:.0f}s: {', '.join(answer.get('missing', []))}"
                                                f" (seen: {seen})", code="DEPLOY-GATE-TIMEOUT")


async def network_agents_gate(d: Deploy) -> None:
    """For the Pacemaker stage's gate: the L3, DHCP and metadata agents alive under the shared
    identity (Neutron keeps one row per agent type and host, so 'alive' is also 'once')."""
    if not (d.topo.runs("neutron") and d.topo.runs("keystone") and d.topo.controllers and d.topo.network_nodes):
        return
    await api_gate(d, cluster_expectations(d.topo), "the network nodes' agents alive in Neutron", timeout=240)


# -- the stage --------------------------------------------------------------------------------------
