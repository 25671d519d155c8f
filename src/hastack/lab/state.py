"""What a lab holds on this host, on disk, so `lab down` can undo it even after `lab up` crashed.

Why planned names are written *before* anything is created: teardown then never has to guess;
it removes whatever of the recorded things exists and skips the rest (idempotent). Both the power
switch daemon and the CLI update the file, always under an exclusive lock with an atomic rename.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from hastack.topology.model import Topology

LABS = Path("/var/lib/hastack/labs")
RUN = Path("/run/hastack")
CGROUP_V2 = next((p for p in (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))
                  if (p / "cgroup.procs").exists() and (p / "cgroup.controllers").exists()),
                 Path("/sys/fs/cgroup/unified"))  # hybrid v1/v2 (this host) or pure v2
CGROUP_NAMED = Path("/sys/fs/cgroup/systemd")
IFNAMSIZ = 15
POWER_GUEST_DIR = "/run/hastack-power"


def ifname(prefix: str, *parts: str) -> str:
    """A Linux interface name (<= 15 chars), readable when it fits, else a stable hash."""
    name = prefix + "-".join(parts)
    if len(name) <= IFNAMSIZ:
        return name
    return prefix + hashlib.sha256("/".join(parts).encode()).hexdigest()[: IFNAMSIZ - len(prefix)]


def host_address(topo: Topology) -> ipaddress.IPv4Interface:
    """The lab host's address on the bridge: the first address of the management net no node uses."""
    net = topo.network.management
    taken = {n.address for n in topo.nodes} | {topo.network.vip}
    for addr in net.hosts():
        if addr not in taken:
            return ipaddress.IPv4Interface(f"{addr}/{net.prefixlen}")
    raise ValueError(f"no free address left in {net} for the lab host")


def lab_problem(topo: Topology) -> str | None:
    """What makes a topology impossible to run as a lab (pure).

    Only what the lab itself needs is checked: a lab of a topology that would not pass
    `hastack validate` (e.g. too few votes) is still useful for experiments.
    """
    net = topo.network.management
    names = [n.name for n in topo.nodes]
    addrs = [n.address for n in topo.nodes] + [topo.network.vip]
    if len(set(names)) != len(names):
        return "node names are not unique"
    if len(set(addrs)) != len(addrs):
        return "node addresses (and the VIP) are not unique"
    outside = [str(a) for a in addrs if a not in net or a in (net.network_address, net.broadcast_address)]
    if outside:
        return f"{', '.join(outside)} not usable host address(es) of {net}"
    if len(addrs) >= net.num_addresses - 2:
        return f"{net} has no address left for the lab host"
    return None


@dataclass
class NodeState:
    name: str
    address: str  # with prefix, e.g. 10.77.0.11/24
    netns: str
    veth_host: str
    veth_node: str
    dir: str  # upper/work live here (the node's "disk")
    cgroup: str  # relative path, the same in every cgroup hierarchy used
    power: str = "off"  # what the switch last set: "on" | "off"
    pid: int | None = None  # the node's systemd-nspawn (launcher) process
    fences: list[str] = field(default_factory=list)  # the nodes this node may switch: its Pacemaker peers


@dataclass
class LabState:
    name: str
    topology: str
    rootfs: str
    bridge: str
    host_address: str
    nft_table: str
    cgroup: str
    run_dir: str
    nodes: dict[str, NodeState] = field(default_factory=dict)
    power_pid: int | None = None
    power_cgroup: str = ""
    cuts: list[list[str]] = field(default_factory=list)  # [node, peer] pairs; peer "*" = every link
    created: float = 0.0

    @property
    def socket(self) -> str:
        return f"{self.run_dir}/power/power.sock"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LabState:
        data = json.loads(text)
        # Fields this code does not know (a newer hastack wrote the file) are ignored, not fatal: the
        # power switch reads this file on every request and must keep answering across upgrades.
        node_fields = {f.name for f in fields(NodeState)}
        data["nodes"] = {k: NodeState(**{f: x for f, x in v.items() if f in node_fields})
                         for k, v in data.get("nodes", {}).items()}
        lab_fields = {f.name for f in fields(cls)}
        return cls(**{f: x for f, x in data.items() if f in lab_fields})


def fence_peers(topo: Topology, name: str) -> list[str]:
    """What the power switch lets a node switch: the other members of its Pacemaker cluster (the
    network nodes, when fencing is on). Nobody else: a node's root must not power off a controller."""
    members = [n.name for n in topo.network_nodes]
    if not topo.fencing.enabled or name not in members:
        return []
    return [m for m in members if m != name]


def plan(topo: Topology, topology_path: Path, rootfs: Path) -> LabState:
    """Every name the lab will use on this host, derived from the topology (pure)."""
    name = topo.name
    prefix = topo.network.management.prefixlen
    cg = f"hastack/{name}"
    nodes = {
        n.name: NodeState(name=n.name, address=f"{n.address}/{prefix}", netns=f"hastack-{name}-{n.name}",
                          veth_host=ifname("v", name, n.name), veth_node=topo.network.interface,
                          dir=str(LABS / name / "nodes" / n.name), cgroup=f"{cg}/{n.name}",
                          fences=fence_peers(topo, n.name))
        for n in topo.nodes
    }
    return LabState(name=name, topology=str(topology_path.resolve()), rootfs=str(rootfs),
                    bridge=ifname("hs-", name), host_address=str(host_address(topo)),
                    nft_table=f"hastack-{name}", cgroup=cg, run_dir=str(RUN / name), nodes=nodes,
                    power_cgroup=f"{cg}/power-switch")


def shape(st: LabState) -> tuple[object, ...]:
    """What must match for `lab up` to resume a recorded lab instead of refusing (pure)."""
    nodes = tuple(sorted((n.name, n.address, n.veth_node) for n in st.nodes.values()))
    return (st.name, st.rootfs, st.bridge, st.host_address, nodes)


def grown(old: LabState, new: LabState) -> LabState | None:
    """The recorded lab with the nodes the topology added, when the topology is the same lab with
    nodes added or left out (a dead controller replaced by a new one, issue 16): same name, image,
    bridge and host address, every node in both unchanged, no added node on an address the lab
    still uses. A node left out stays in the state, as it is (powered off for good, say), until
    `lab down`. None when the two differ in any other way (pure)."""
    if (old.name, old.rootfs, old.bridge, old.host_address) != (new.name, new.rootfs, new.bridge, new.host_address):
        return None
    if any((old.nodes[n].address, old.nodes[n].veth_node) != (new.nodes[n].address, new.nodes[n].veth_node)
           for n in set(old.nodes) & set(new.nodes)):
        return None
    added = {n: ns for n, ns in new.nodes.items() if n not in old.nodes}
    taken = {ns.address.split("/")[0] for ns in old.nodes.values()}
    if any(ns.address.split("/")[0] in taken for ns in added.values()):
        return None
    merged = LabState.from_json(old.to_json())
    merged.nodes.update(added)
    return merged


def state_path(name: str) -> Path:
    return LABS / name / "state.json"


def read(name: str) -> LabState | None:
    path = state_path(name)
    if not path.is_file():
        return None
    return LabState.from_json(path.read_text())


def write(state: LabState) -> None:
    path = state_path(state.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".state.{os.getpid()}.tmp")
    tmp.write_text(state.to_json())
    tmp.replace(path)


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """Serialises read-modify-write of one lab's state between processes."""
    lock = LABS / name / ".lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def update(name: str) -> Iterator[LabState]:
    """Read, let the caller change, write back: all under the lab's lock."""
    with locked(name):
        state = read(name)
        if state is None:
            raise FileNotFoundError(state_path(name))
        yield state
        write(state)


def all_labs() -> list[LabState]:
    if not LABS.is_dir():
        return []
    found = []
    for d in sorted(LABS.iterdir()):
        st = read(d.name)
        if st is not None:
            found.append(st)
    return found
