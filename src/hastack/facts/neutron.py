"""What a network node serves to tenants, read from the node itself (not from the agents' reports).

`serving(pattern)` answers in one command, for the drill watcher that asks each network node ten
times a second: whether an agent process matching `pattern` runs (its command line, NUL-separated),
which routers have a tenant gateway address up (a `qrouter-<id>` namespace with an IPv4 address on
a `qr-` interface that is up: the address the tenant's instances use as their gateway), and which
networks have a DHCP server listening (a `qdhcp-<id>` namespace with a UDP socket on port 67:
dnsmasq, once it runs). Neutron reports its agents alive seconds before the namespaces are built and
dnsmasq is started; what a tenant feels is the second.

Read with `ip -n` and `ss -N` (both enter the namespace by name without a new mount namespace, which
`ip netns exec` creates each time), so a node without namespaces costs one `ip netns list`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hastack.facts.base import Fact, require_exit
from hastack.transport.base import Result

SERVING = """grep -l -a -E -e "$1" /proc/[0-9]*/cmdline 2>/dev/null | head -n 1 | grep -q . && echo agents
for ns in $(ip netns list 2>/dev/null | cut -d ' ' -f 1); do
  case "$ns" in
    qrouter-*) ip -n "$ns" -o -4 addr show up 2>/dev/null | grep -q '^[0-9]*: qr-' && echo "router ${ns#qrouter-}" ;;
    qdhcp-*) ss -N "$ns" -H -l -u -n 'sport = :67' 2>/dev/null | grep -q . && echo "dhcp ${ns#qdhcp-}" ;;
  esac
done
exit 0
"""
"""Prints `agents` when an agent runs, then `router <id>` and `dhcp <id>` per namespace serving.
Agents are found in the node's own /proc (its PID namespace), never through systemctl, which hangs
on a frozen node. The pattern is an argument ($1), never part of the script: anchor it (`^...`),
since this probe's own `sh` and `grep` carry it in their arguments. Namespace names are quoted."""

_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Serving:
    agents: bool
    routers: frozenset[str]
    """Router ids with a gateway address up in their namespace."""
    dhcp: frozenset[str]
    """Network ids with a DHCP server listening in their namespace."""


def parse_serving(text: str) -> Serving:
    agents, routers, dhcp = False, set[str](), set[str]()
    for line in text.splitlines():
        kind, _, ident = line.strip().partition(" ")
        if kind == "agents" and not ident:
            agents = True
        elif kind in ("router", "dhcp") and _ID.fullmatch(ident):
            (routers if kind == "router" else dhcp).add(ident)
        elif line.strip():
            raise ValueError(f"not 'agents', 'router <id>' or 'dhcp <id>': {line[:80]!r}")
    return Serving(agents, frozenset(routers), frozenset(dhcp))


def serving(pattern: str) -> Fact[Serving]:
    """Agents, router gateways and DHCP servers on a network node (see the module's docstring)."""
    def parse(r: Result) -> Serving:
        return parse_serving(require_exit(r).stdout)

    return Fact("neutron_serving", ("sh", "-c", SERVING, "sh", pattern), parse, 10.0)
