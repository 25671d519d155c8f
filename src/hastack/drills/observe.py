"""A reference `observe` callable for the watcher, over the lab's public API (`run`, `address`,
cuts). What it reads is parsed by `facts/` (the same parsers status and deploy use, tested on
recorded output): `lab_fact` runs a fact's command through the lab. The lab may replace it with
something cheaper; the contract is `workloads.Observe`:
{"vip": [nodes], "agents": [nodes], "galera_writer": node | None, "routers": [nodes], "dhcp": [nodes]}.

What each field means, and why:
- vip: controllers with the VIP configured *and* a link that is not cut. A fully cut controller
  keeps its address (its keepalived hears no adverts and stays master) but takes no traffic;
  counting it would score every cut as split brain. When the link returns, both holders are
  counted until VRRP settles: that overlap is real (ARP flip-flop) and is scored.
- agents: network nodes where an agent process of the Pacemaker group runs, links or not: a cut
  node that keeps its routers while the other starts them is exactly what fencing must prevent.
  Processes are found in the node's own /proc (its PID namespace), not through systemctl, which
  would hang on a frozen node.
- routers / dhcp: network nodes where a router's tenant gateway address is up in its namespace, and
  where a DHCP server listens in a network's namespace (`facts.neutron.serving`, read in the same
  command as the agents): what a tenant needs, which the agents reach seconds after they report
  alive. Counted like the agents, links or not.
- galera_writer: the server HAProxy sends writes to, read from the stats CSV of a VIP holder: the
  first UP active server, else the first UP backup (HAProxy uses one backup unless `allbackups`).
Each node is asked in parallel with a short timeout; a node that does not answer holds nothing.
The VIP is read at one instant where the lab can (`local_ipv4`: every node's fib_trie from the
host, back to back), since a move between two separate readings would score as two holders.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

import httpx

from hastack import pki
from hastack.components import haproxy, pacemaker
from hastack.facts.base import Fact
from hastack.facts.haproxy import parse_show_stat
from hastack.facts.neutron import Serving, serving
from hastack.facts.system import addresses
from hastack.topology.model import Topology
from hastack.transport.base import Result

T = TypeVar("T")

_AGENTS = "|".join(pacemaker.AGENT_UNITS)
AGENT_PATTERN = f"^(({_AGENTS}) |/usr/bin/python3[^/]*/usr/bin/({_AGENTS}))"
"""An agent process itself: its command line *starts* with the agent (oslo's process title
`neutron-l3-agent (...)`, or python3 running /usr/bin/neutron-l3-agent). Anchored, so a process
that merely names an agent in its arguments (systemctl, a status probe, this probe's own grep) never
counts: unanchored, `hastack status` polling the node showed up as the agents running on both nodes."""
NETWORK_SERVING = serving(AGENT_PATTERN)


class Completed(Protocol):
    """What `subprocess.run(..., text=True)` returns, as far as drills read it."""

    returncode: int
    stdout: str
    stderr: str


class LabRun(Protocol):
    def run(self, name: str, argv: list[str], timeout: float = 120, input: str | None = None) -> Completed: ...
    def address(self, name: str) -> str: ...


def lab_fact(lab: LabRun, node: str, fact: Fact[T], timeout: float | None = None) -> T:
    """Run a fact's command on a lab node and parse it with the fact's own parser. Raises what the
    lab raises (node off, timeout) and what the parser raises (output it cannot use)."""
    res = lab.run(node, list(fact.argv), timeout=fact.timeout if timeout is None else timeout)
    return fact.parse(Result(node, fact.argv, res.returncode, res.stdout, res.stderr))


def galera_writer(stats_csv: str) -> str | None:
    """HAProxy's stats CSV (`/stats;csv` is `show stat`'s format) -> the server it sends writes to."""
    try:
        return parse_show_stat(stats_csv).serving(haproxy.GALERA_PROXY)
    except ValueError:
        return None


def fully_cut(cuts: Iterable[Iterable[str]]) -> set[str]:
    """Nodes cut from every peer (`[node, "*"]` in the lab's state)."""
    return {c[0] for c in (list(x) for x in cuts) if len(c) == 2 and c[1] == "*"}


class LabObserver:
    """Callable: one observation of the whole lab, every node asked at once."""

    def __init__(self, lab: LabRun, topo: Topology, stats_password: str,
                 cuts: Callable[[], Iterable[Iterable[str]]], timeout: float = 1.0, ca_pem: str | None = None) -> None:
        self.lab, self.topo, self.timeout, self.cuts = lab, topo, timeout, cuts
        self.vip = str(topo.network.vip)
        self.vip_ip = ipaddress.IPv4Address(self.vip)
        self.auth = (haproxy.STATS_USER, stats_password)
        self.pool = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="drill-observe")
        self.http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(0.3, timeout)), verify=pki.verify(ca_pem),
                                 trust_env=False)

    def _read(self, node: str, fact: Fact[T]) -> T | None:
        try:
            return lab_fact(self.lab, node, fact, self.timeout)
        except Exception:  # node off (LabError), hung (TimeoutExpired), no answer: it holds nothing we can see
            return None

    def __call__(self) -> Mapping[str, Any]:
        ctls = [n.name for n in self.topo.controllers]
        nets = [n.name for n in self.topo.network_nodes]
        seen: dict[str, Serving | None] = dict(zip(nets, self.pool.map(lambda n: self._read(n, NETWORK_SERVING), nets),
                                                   strict=True))
        cut = fully_cut(self.cuts())
        vip = [n for n in self._vip_holders(ctls) if n not in cut]
        return {"vip": vip, "galera_writer": self._writer(vip),
                "agents": [n for n, v in seen.items() if v is not None and v.agents],
                "routers": [n for n, v in seen.items() if v is not None and v.routers],
                "dhcp": [n for n, v in seen.items() if v is not None and v.dhcp]}

    def _vip_holders(self, ctls: list[str]) -> list[str]:
        """The controllers holding the VIP. A lab that reads every node's addresses at one instant
        (`local_ipv4`) is asked that way: a process per node, under load, spread the readings over up
        to the timeout, and a VIP that moved between two of them showed on both (a false split brain)."""
        together = getattr(self.lab, "local_ipv4", None)
        if together is not None:
            try:
                held = together(ctls)
            except Exception:  # the lab's state unreadable for a moment: ask the nodes instead
                pass
            else:
                return [n for n in ctls if (a := held.get(n)) is not None and self.vip_ip in a]
        ip = self.pool.map(lambda n: self._read(n, addresses()), ctls)
        return [n for n, a in zip(ctls, ip, strict=True) if a is not None and a.holds(self.vip)]

    def _writer(self, holders: list[str]) -> str | None:
        """Ask the VIP holder's HAProxy first; during a VIP move any other sees the same backends."""
        for node in [*holders, *(n.name for n in self.topo.controllers if n.name not in holders)]:
            try:
                resp = self.http.get(f"{self.topo.api_scheme}://{self.lab.address(node)}:{haproxy.STATS_PORT}/stats;csv",
                                     auth=self.auth)
            except Exception:  # try the next holder
                continue
            if resp.status_code == 200:
                return galera_writer(resp.text)
        return None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.http.close()
