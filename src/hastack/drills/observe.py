"""A reference `observe` callable for the watcher, over the lab's public API (`run`, `address`,
cuts), and the pure parsers it uses. The lab may replace it with something cheaper; the contract
is `workloads.Observe`: {"vip": [nodes], "agents": [nodes], "galera_writer": node | None}.

What each field means, and why:
- vip: controllers with the VIP configured *and* a link that is not cut. A fully cut controller
  keeps its address (its keepalived hears no adverts and stays master) but takes no traffic;
  counting it would score every cut as split brain. When the link returns, both holders are
  counted until VRRP settles: that overlap is real (ARP flip-flop) and is scored.
- agents: network nodes where an agent process of the Pacemaker group runs, links or not: a cut
  node that keeps its routers while the other starts them is exactly what fencing must prevent.
  Processes are found in the node's own /proc (its PID namespace), not through systemctl, which
  would hang on a frozen node.
- galera_writer: the server HAProxy sends writes to, read from the stats CSV of a VIP holder: the
  first UP active server, else the first UP backup (HAProxy uses one backup unless `allbackups`).
Each node is asked in parallel with a short timeout; a node that does not answer holds nothing.
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import httpx

from hastack import pki
from hastack.components import haproxy, pacemaker
from hastack.topology.model import Topology

_AGENTS = "|".join(pacemaker.AGENT_UNITS)
AGENT_PATTERN = f"^(({_AGENTS}) |/usr/bin/python3[^/]*/usr/bin/({_AGENTS}))"
"""An agent process itself: its command line *starts* with the agent (oslo's process title
`neutron-l3-agent (...)`, or python3 running /usr/bin/neutron-l3-agent). Anchored, so a process
that merely names an agent in its arguments (systemctl, a status probe, this grep) never counts:
unanchored, `hastack status` polling the node showed up as the agents running on both nodes."""
FIND_AGENTS = ["sh", "-c", f"grep -l -a -E '{AGENT_PATTERN}' /proc/[0-9]*/cmdline 2>/dev/null | head -n 1"]


class Completed(Protocol):
    """What `subprocess.run(..., text=True)` returns, as far as drills read it."""

    returncode: int
    stdout: str
    stderr: str


class LabRun(Protocol):
    def run(self, name: str, argv: list[str], timeout: float = 120, input: str | None = None) -> Completed: ...
    def address(self, name: str) -> str: ...


def has_address(ip_addr_output: str, address: str) -> bool:
    """`ip -o -4 addr show` lists `... inet 10.77.0.10/32 ...` for each configured address."""
    for line in ip_addr_output.splitlines():
        words = line.split()
        if any(w == "inet" and nxt.split("/")[0] == address for w, nxt in zip(words, words[1:], strict=False)):
            return True
    return False


def galera_writer(stats_csv: str, proxy: str = "galera") -> str | None:
    rows = [r for r in csv.DictReader(io.StringIO(stats_csv.lstrip("# ")))
            if r.get("pxname") == proxy and r.get("svname") not in ("FRONTEND", "BACKEND")]
    up = [r for r in rows if (r.get("status") or "").startswith("UP")]
    active = [r for r in up if r.get("act") == "1"]
    backup = [r for r in up if r.get("bck") == "1"]
    chosen = active or backup
    return chosen[0]["svname"] if chosen else None


def fully_cut(cuts: Iterable[Iterable[str]]) -> set[str]:
    """Nodes cut from every peer (`[node, "*"]` in the lab's state)."""
    return {c[0] for c in (list(x) for x in cuts) if len(c) == 2 and c[1] == "*"}


class LabObserver:
    """Callable: one observation of the whole lab, every node asked at once."""

    def __init__(self, lab: LabRun, topo: Topology, stats_password: str,
                 cuts: Callable[[], Iterable[Iterable[str]]], timeout: float = 1.0, ca_pem: str | None = None) -> None:
        self.lab, self.topo, self.timeout, self.cuts = lab, topo, timeout, cuts
        self.vip = str(topo.network.vip)
        self.auth = (haproxy.STATS_USER, stats_password)
        self.pool = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="drill-observe")
        self.http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(0.3, timeout)), verify=pki.verify(ca_pem),
                                 trust_env=False)

    def _ask(self, node: str, argv: list[str]) -> str | None:
        try:
            res = self.lab.run(node, argv, timeout=self.timeout)
        except Exception:  # node off (LabError), hung (TimeoutExpired): it holds nothing we can see
            return None
        return res.stdout if res.returncode == 0 else None

    def __call__(self) -> Mapping[str, Any]:
        ctls = [n.name for n in self.topo.controllers]
        nets = [n.name for n in self.topo.network_nodes]
        ip = self.pool.map(lambda n: self._ask(n, ["ip", "-o", "-4", "addr", "show"]), ctls)
        agents = self.pool.map(lambda n: self._ask(n, FIND_AGENTS), nets)
        cut = fully_cut(self.cuts())
        vip = [n for n, out in zip(ctls, ip, strict=True) if out and has_address(out, self.vip) and n not in cut]
        running = [n for n, out in zip(nets, agents, strict=True) if out and out.strip()]
        return {"vip": vip, "agents": running, "galera_writer": self._writer(vip)}

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
