"""The lab network on the host: one bridge, a netns + veth per node, and nftables for cuts.

Why the host builds it (not nspawn): a power cycle must recreate a node's namespace the way a
real reboot loses kernel state, and link cuts must live outside the node where it cannot undo them.
Nothing routes out: nodes get no default route, and an inet table drops forwarding to/from the bridge.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import subprocess
import time
from pathlib import Path

from hastack.lab.errors import LabError
from hastack.lab.state import LabState, NodeState


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise LabError("ip-failed", f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}",
                       "check the host's network state; `hastack lab down` cleans up what the lab made")
    return proc


def link_exists(name: str) -> bool:
    return ip("link", "show", "dev", name, check=False).returncode == 0


def netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def busy_route(routes: list[dict[str, str]], net: ipaddress.IPv4Network, bridge: str) -> str | None:
    """A host route (from `ip -j route`) overlapping the lab net, other than the lab's own bridge (pure)."""
    for r in routes:
        dst = r.get("dst", "")
        if dst in ("default", "") or r.get("dev") == bridge or r.get("type") in ("local", "broadcast"):
            continue
        try:
            other = ipaddress.IPv4Network(dst, strict=False)
        except ValueError:
            continue
        if other.overlaps(net):
            return f"{dst} dev {r.get('dev')}"
    return None


def check_range_free(state: LabState) -> None:
    """Refuse a management net the host already routes (other than through this lab's bridge)."""
    net = ipaddress.IPv4Interface(state.host_address).network
    routes = json.loads(ip("-j", "-4", "route", "show", "table", "all").stdout or "[]")
    busy = busy_route(routes, net, state.bridge)
    if busy:
        raise LabError("address-range-busy", f"{net} is already routed on this host ({busy})",
                       "choose another network.management in the topology, or remove that route")


def mac(*parts: str) -> str:
    """A stable, locally administered unicast MAC.

    A power cycle keeps the node's "NIC", so its peers' ARP caches stay valid, as with real hardware.
    """
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def bridge_up(state: LabState) -> None:
    if not link_exists(state.bridge):
        ip("link", "add", state.bridge, "address", mac(state.name, "bridge"), "type", "bridge",
           "mcast_snooping", "0", "stp_state", "0", "forward_delay", "0")
    ip("addr", "replace", state.host_address, "dev", state.bridge)
    ip("link", "set", state.bridge, "up")


def node_link(state: LabState, node: NodeState) -> None:
    """A fresh netns for the node, its veth on the bridge, its address; no default route."""
    remove_node_link(node)
    ip("netns", "add", node.netns)
    ip("link", "add", node.veth_host, "address", mac(state.name, node.name, "host"), "type", "veth",
       "peer", "name", node.veth_node, "address", mac(state.name, node.name), "netns", node.netns)
    ip("link", "set", node.veth_host, "master", state.bridge, "up")
    ns = ["-n", node.netns]
    ip(*ns, "link", "set", "lo", "up")
    ip(*ns, "addr", "add", node.address, "dev", node.veth_node)
    ip(*ns, "link", "set", node.veth_node, "up")


def link_down(node: NodeState) -> None:
    if link_exists(node.veth_host):
        ip("link", "set", node.veth_host, "down", check=False)


def remove_node_link(node: NodeState) -> None:
    if netns_exists(node.netns):
        ip("netns", "delete", node.netns, check=False)
    if link_exists(node.veth_host):
        ip("link", "delete", node.veth_host, check=False)
    wait_gone(lambda: netns_exists(node.netns) or link_exists(node.veth_host), f"{node.name}'s netns/veth")


def wait_gone(exists: object, what: str, timeout: float = 10.0) -> None:
    """Netns and veth deletion is asynchronous in the kernel: poll (bounded) until gone."""
    assert callable(exists)
    deadline = time.monotonic() + timeout
    while exists():
        if time.monotonic() > deadline:
            raise LabError("teardown-stuck", f"{what} still present after {timeout:.0f} s",
                           "run `hastack lab down` again")
        time.sleep(0.05)


def remove_bridge(state: LabState) -> None:
    if link_exists(state.bridge):
        ip("link", "delete", state.bridge, check=False)
    wait_gone(lambda: link_exists(state.bridge), f"bridge {state.bridge}")


# -- nftables: isolation and cuts ----------------------------------------------------------------------

def _cut_rules(state: LabState) -> list[str]:
    rules = []
    for node, peer in state.cuts:
        a = state.nodes[node].veth_host
        if peer == "*":
            rules += [f'iifname "{a}" drop', f'oifname "{a}" drop']
        else:
            b = state.nodes[peer].veth_host
            rules += [f'iifname "{a}" oifname "{b}" drop', f'iifname "{b}" oifname "{a}" drop']
    return rules


def ruleset(state: LabState) -> str:
    """The lab's whole nftables state (pure): re-applied atomically on every change."""
    cut = _cut_rules(state)
    # a node cut from every link is also cut from the host (input/output hooks of the bridge)
    host = [r for r in cut if "oifname" not in r or "iifname" not in r]
    lines = [f"table bridge {state.nft_table} {{}}", f"delete table bridge {state.nft_table}",
             f"table bridge {state.nft_table} {{",
             "  chain cut_forward { type filter hook forward priority -10; policy accept;"]
    lines += [f"    {r}" for r in cut]
    lines += ["  }", "  chain cut_input { type filter hook input priority -10; policy accept;"]
    lines += [f"    {r}" for r in host if r.startswith("iifname")]
    lines += ["  }", "  chain cut_output { type filter hook output priority -10; policy accept;"]
    lines += [f"    {r}" for r in host if r.startswith("oifname")]
    lines += ["  }", "}",
              f"table inet {state.nft_table} {{}}", f"delete table inet {state.nft_table}",
              f"table inet {state.nft_table} {{",
              "  chain no_routing { type filter hook forward priority -10; policy accept;",
              # bridged frames also pass here (br_netfilter) with in = out = the bridge: keep those
              f'    iifname "{state.bridge}" oifname != "{state.bridge}" drop',
              f'    oifname "{state.bridge}" iifname != "{state.bridge}" drop', "  }", "}"]
    return "\n".join(lines) + "\n"


def apply_nft(state: LabState) -> None:
    proc = subprocess.run(["nft", "-f", "-"], input=ruleset(state), capture_output=True, text=True)
    if proc.returncode != 0:
        raise LabError("nft-failed", f"nftables refused the lab rules: {proc.stderr.strip()[:300]}",
                       "this kernel needs nf_tables with the bridge family")


def remove_nft(state: LabState) -> None:
    for family in ("bridge", "inet"):
        subprocess.run(["nft", "delete", "table", family, state.nft_table], capture_output=True)
