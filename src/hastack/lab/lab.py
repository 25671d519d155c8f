"""A lab: the topology's nodes as systemd-nspawn containers on this host, with a power switch and faults.

Python API (what drills and tests use):

    lab = Lab.load("examples/seed.yml")
    lab.up()                            # image, bridge, nodes, power switch; waits for sshd everywhere
    lab.run("ctl-1", ["hostname"])      # inside the node (nsenter: works even when its links are cut)
    lab.power("net-1", "off")           # "on" | "off" | "reset": through the power switch, like fencing
    lab.cut("ctl-1"); lab.heal("ctl-1") # all links, or peers=["ctl-2"] for chosen links only
    lab.freeze("ctl-2"); lab.thaw("ctl-2")
    lab.kill_service("ctl-1", "rabbitmq-server", "KILL")
    lab.down()
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ipaddress
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncssh

from hastack.facts.system import parse_fib_trie_local
from hastack.lab import cgroup, host, image, net, node, power
from hastack.lab import state as lstate
from hastack.lab.errors import LabError
from hastack.topology.load import load
from hastack.topology.model import Topology

Progress = Callable[[str], None]
HOST_TOOLS = {"systemd-nspawn": "systemd-container", "ip": "iproute2", "nft": "nftables",
              "unshare": "util-linux", "nsenter": "util-linux"}  # + debootstrap to build the image
POWER_ACTIONS = ("on", "off", "reset", "reboot")


def _quiet(_: str) -> None:
    pass


class Lab:
    def __init__(self, topo: Topology, topology_path: Path) -> None:
        self.topo = topo
        self.path = topology_path
        self.name = topo.name
        self._leaders: dict[str, int] = {}

    @classmethod
    def load(cls, topology_path: str | Path) -> Lab:
        path = Path(topology_path)
        if not path.is_file():
            raise LabError("no-topology", f"{path}: no such file", "name a topology YAML file")
        loaded = load(path)
        if loaded.topology is None:
            first = next((r.render() for r in loaded.reports if r.is_error), "invalid")
            raise LabError("bad-topology", f"{path}: {first}", f"run `hastack validate {path}`")
        problem = lstate.lab_problem(loaded.topology)
        if problem:
            raise LabError("bad-topology", f"{path}: {problem}", f"run `hastack validate {path}`")
        return cls(loaded.topology, path)

    # -- state -----------------------------------------------------------------------------------------
    @property
    def state(self) -> lstate.LabState:
        st = lstate.read(self.name)
        if st is None:
            raise LabError("lab-not-up", f"lab {self.name} is not up", f"hastack lab up {self.path}")
        return st

    def _node(self, name: str) -> lstate.NodeState:
        st = self.state
        if name not in st.nodes:
            raise LabError("no-such-node", f"lab {self.name} has no node {name!r}",
                           f"one of: {', '.join(st.nodes)}")
        return st.nodes[name]

    def _rel(self, p: Path | None, default: str) -> Path:
        base = self.path.resolve().parent
        return base / p if p is not None else lstate.LABS / self.name / default

    @property
    def key_path(self) -> Path:
        return self._rel(self.topo.ssh.key, "id_ed25519")

    @property
    def known_hosts_path(self) -> Path:
        return self._rel(self.topo.ssh.known_hosts, "known_hosts")

    # -- up ----------------------------------------------------------------------------------------------
    def up(self, progress: Progress | None = None, ssh_timeout: float = 180) -> dict[str, float]:
        """Bring every node up and wait for sshd on all of them; returns seconds per phase."""
        say = progress or _quiet
        self.preflight()
        times: dict[str, float] = {}
        with _timed(times, "image", say):
            rootfs = image.ensure_image(progress)
        st = self._planned(rootfs)
        with _timed(times, "network", say):
            net.bridge_up(st)
            net.apply_nft(st)
        with _timed(times, "disks", say):
            self._disks(st)
        with _timed(times, "power switch", say):
            if not self._switch_answers(st):
                # Crashed, hung, or running code older than the recorded state: replaced, never doubled.
                cgroup.kill(st.power_cgroup)
                pid = power.start(st)
                with lstate.update(self.name) as cur:
                    cur.power_pid = pid
        wanted = [n.name for n in self.topo.nodes]  # a node the topology left out stays as it is (off)
        with _timed(times, "boot", say):
            for n in wanted:  # a node already on stays as it is
                power.ask(st.socket, {"op": "on", "node": n})
        with _timed(times, "ssh", say):
            self.wait_ssh(wanted, timeout=ssh_timeout)
            self._authorize(self._lab_key().export_public_key("openssh").decode().strip())
            self._write_ssh_files()
        return times

    @staticmethod
    def preflight() -> None:
        """Root and the host tools, checked before anything is touched."""
        host.require_root("the lab")
        host.require_tools(HOST_TOOLS)
        host.require_kernel()

    def _planned(self, rootfs: Path) -> lstate.LabState:
        """The lab's recorded state; a new lab's names are recorded before anything is created.

        Every later step of `up` is idempotent, so `up` on a lab that is (partly) up resumes it:
        nodes that run keep running, a dead power switch is restarted, disks are kept.
        """
        st = lstate.plan(self.topo, self.path, rootfs)
        with lstate.locked(self.name):
            old = lstate.read(self.name)
            if old is not None:
                if lstate.shape(old) != lstate.shape(st):
                    more = lstate.grown(old, st)
                    if more is None:
                        raise LabError("lab-differs", f"lab {self.name} is up with another topology or image",
                                       f"hastack lab down {old.topology}, then up again")
                    # nodes added to a running lab: recorded, and the switch restarted so that it
                    # knows them (below); the nodes that run keep running
                    old = more
                    lstate.write(old)
                    cgroup.kill(old.power_cgroup)
                if any(old.nodes[n].fences != st.nodes[n].fences for n in st.nodes):
                    # Recorded before the switch checked its callers, or fencing changed: record who may
                    # fence whom, and restart the switch so that the running one is this code's.
                    for n in st.nodes:
                        old.nodes[n].fences = st.nodes[n].fences
                    lstate.write(old)
                    cgroup.kill(old.power_cgroup)
                return old
            net.check_range_free(st)
            st.created = time.time()
            lstate.write(st)
        return st

    @staticmethod
    def _switch_answers(st: lstate.LabState) -> bool:
        try:
            power.ask(st.socket, {"op": "list"}, timeout=2)
        except LabError:
            return False
        return True

    def _disks(self, st: lstate.LabState) -> None:
        key = self._lab_key()
        authorized = key.export_public_key("openssh").decode()
        for n in self.topo.nodes:
            ns = st.nodes[n.name]
            if node.paths(ns)["upper"].is_dir():
                continue
            hk = asyncssh.generate_private_key("ssh-ed25519", comment=f"root@{n.name}")
            ident = node.Identity(hostname=n.name, hosts=self._hosts(st), authorized_key=authorized,
                                  host_key=hk.export_private_key("openssh").decode(),
                                  host_key_pub=hk.export_public_key("openssh").decode())
            node.create_disk(st, ns, ident)

    def _hosts(self, st: lstate.LabState) -> str:
        lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
        lines += [f"{n.address} {self.topo.fqdn(n)} {n.name}" for n in self.topo.nodes]
        lines.append(f"{self.topo.network.vip} vip.{self.topo.domain} vip")
        lines.append(f"{st.host_address.split('/')[0]} lab-host.{self.topo.domain} lab-host")
        return "\n".join(lines) + "\n"

    def _lab_key(self) -> asyncssh.SSHKey:
        """The lab's client key: reused when the topology's key file exists, generated (0600) otherwise."""
        path = self.key_path
        if path.is_file():
            return asyncssh.read_private_key(str(path))
        key = asyncssh.generate_private_key("ssh-ed25519", comment=f"hastack-lab-{self.name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_bytes(key.export_private_key("openssh"))
        path.with_name(path.name + ".pub").write_bytes(key.export_public_key("openssh"))
        return key

    def _authorize(self, pub: str) -> None:
        """Make sure every node of the topology accepts its key (a resumed lab may meet a new key file).
        Only the topology's nodes, which `up` has just powered on: a node the lab still records but the
        topology left out (a controller replaced by another) stays off and is not asked."""
        keys = "/root/.ssh/authorized_keys"
        script = f'grep -qxF "$1" {keys} 2>/dev/null || echo "$1" >> {keys}'
        for n in (x.name for x in self.topo.nodes):
            res = self.run(n, ["sh", "-c", script, "sh", pub], timeout=30)
            if res.returncode != 0:
                raise LabError("authorize-failed", f"{n}: cannot install the lab key: {res.stderr.strip()}")

    def _write_ssh_files(self) -> None:
        """known_hosts with each node's real host key; other lines of the file are kept."""
        st = self.state
        mine, names = [], set()
        for n in self.topo.nodes:
            upper = node.paths(st.nodes[n.name])["upper"]
            pub = (upper / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
            aliases = [n.name, self.topo.fqdn(n), str(n.address)]
            names.update(aliases)
            mine.append(f"{','.join(aliases)} {pub[0]} {pub[1]}")
        path = self.known_hosts_path
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if path.is_file():
            kept = [ln for ln in path.read_text().splitlines()
                    if not ln.strip() or set(ln.split()[0].split(",")).isdisjoint(names)]
        path.write_text("\n".join([*kept, *mine]) + "\n")

    # -- waiting ---------------------------------------------------------------------------------------------
    def wait_ssh(self, nodes: list[str] | None = None, timeout: float = 180) -> None:
        """Poll (bounded) until sshd sends its banner on every given node."""
        st = self.state
        todo = {n: st.nodes[n].address.split("/")[0] for n in (nodes or list(st.nodes))}
        deadline = time.monotonic() + timeout
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            while todo:
                ok = dict(zip(todo, pool.map(_ssh_banner, todo.values()), strict=True))
                todo = {n: a for n, a in todo.items() if not ok[n]}
                if not todo:
                    return
                if time.monotonic() > deadline:
                    first = st.nodes[next(iter(todo))]
                    raise LabError("ssh-timeout", f"sshd did not answer within {timeout:.0f} s on "
                                   f"{', '.join(sorted(todo))}", f"see {first.dir}/console.log")
                time.sleep(0.2)

    # -- down ------------------------------------------------------------------------------------------------
    def down(self, progress: Progress | None = None, timeout: float = 60) -> dict[str, float]:
        """Stop everything the lab made (idempotent; the image cache stays). timeout=0: no clean shutdown."""
        say = progress or _quiet
        host.require_root("the lab")
        st = lstate.read(self.name) or lstate.plan(self.topo, self.path, Path(""))
        times: dict[str, float] = {}
        with _timed(times, "nodes", say):
            node.shutdown(list(st.nodes.values()), timeout)
            stuck = [n for n, ns in st.nodes.items() if cgroup.populated(ns.cgroup)]
            if stuck:
                raise LabError("teardown-stuck", f"processes of {', '.join(stuck)} survived SIGKILL",
                               "see dmesg")
        with _timed(times, "power switch", say):
            # the switch is the nodes' parent: let it reap them (bounded) before it goes
            _wait_reaped([ns.pid for ns in st.nodes.values() if ns.pid], timeout=2)
            cgroup.kill(st.power_cgroup)
        with _timed(times, "network", say):
            for ns in st.nodes.values():
                net.remove_node_link(ns)
            net.remove_bridge(st)
            net.remove_nft(st)
        with _timed(times, "files", say):
            for ns in st.nodes.values():
                cgroup.remove(ns.cgroup)
            for rel in (st.power_cgroup, st.cgroup, "hastack"):
                if not _has_children(rel):  # another lab may still live under "hastack"
                    cgroup.remove(rel)
            for d in (Path(st.run_dir), lstate.LABS / self.name):
                if d.exists():
                    host.unmount_under(d)
                    subprocess.run(["rm", "-rf", "--one-file-system", str(d)], check=True)
        return times

    # -- power and faults --------------------------------------------------------------------------------
    def power(self, name: str, action: str) -> str:
        """Through the power switch, exactly as the fence agent does. Returns the new state."""
        if action not in POWER_ACTIONS:
            raise LabError("bad-action", f"unknown power action {action!r}",
                           f"one of {', '.join(POWER_ACTIONS)}")
        self._node(name)
        op = "reboot" if action == "reset" else action
        return str(power.ask(self.state.socket, {"op": op, "node": name})["state"])

    def status(self, name: str) -> str:
        return "on" if node.is_on(self._node(name)) else "off"

    def cut(self, name: str, peers: list[str] | None = None) -> None:
        """Drop traffic on the node's link (all of it, host included) or only toward the given peers."""
        for p in [name, *(peers or [])]:
            self._node(p)
        with lstate.update(self.name) as st:
            for peer in peers or ["*"]:
                if [name, peer] not in st.cuts:
                    st.cuts.append([name, peer])
            net.apply_nft(st)

    def heal(self, name: str, peers: list[str] | None = None) -> None:
        """Undo cuts involving the node (all of them, or only those toward the given peers)."""
        self._node(name)
        with lstate.update(self.name) as st:
            st.cuts = [c for c in st.cuts if not _heals(c, name, peers)]
            net.apply_nft(st)

    def freeze(self, name: str) -> None:
        """Every process of the node stops where it is (a hung machine: its link stays up)."""
        if not cgroup.freeze(self._node(name).cgroup, True):
            raise LabError("freeze-failed", f"{name} did not freeze within 10 s")

    def thaw(self, name: str) -> None:
        if not cgroup.freeze(self._node(name).cgroup, False):
            raise LabError("thaw-failed", f"{name} did not thaw within 10 s")

    def kill_service(self, name: str, unit: str, signal: str = "KILL",
                     whom: str = "all") -> subprocess.CompletedProcess[str]:
        """`whom`: "all" or "main" (systemctl's --kill-who; systemd 252 knows that spelling)."""
        return self.run(name, ["systemctl", "kill", f"--kill-who={whom}", f"--signal={signal}", unit])

    def run(self, name: str, argv: list[str], timeout: float = 120,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run argv inside the node (its namespaces, as root); output captured as text."""
        stdin = None if input is not None else subprocess.DEVNULL
        return subprocess.run(node.enter_argv(self._node(name), argv), capture_output=True, text=True,
                              timeout=timeout, input=input, stdin=stdin)

    def local_ipv4(self, names: list[str]) -> dict[str, frozenset[ipaddress.IPv4Address] | None]:
        """The named nodes' own IPv4 addresses, read together from the host (`node.fib_tries`): what
        the drill watcher uses to see which controllers hold the VIP at one instant. None: node off."""
        st = self.state
        tries = node.fib_tries([st.nodes[n] for n in names if n in st.nodes], self._leaders)
        return {n: (parse_fib_trie_local(t) if (t := tries.get(n)) is not None else None) for n in names}

    def ssh_argv(self, name: str, argv: list[str] | None = None) -> list[str]:
        """`ssh` to the node with the lab key and known_hosts (strict host key checking)."""
        addr = self._node(name).address.split("/")[0]
        return ["ssh", "-i", str(self.key_path), "-o", f"UserKnownHostsFile={self.known_hosts_path}",
                "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5",
                "-o", "LogLevel=ERROR", f"{self.topo.ssh.user}@{addr}", *(argv or [])]

    def address(self, name: str) -> str:
        return self._node(name).address.split("/")[0]

    def memory(self, name: str) -> int:
        return node.memory_pss(self._node(name))

    def cpu_usec(self, name: str) -> int:
        return cgroup.cpu_usec(self._node(name).cgroup)


def _heals(cut: list[str], name: str, peers: list[str] | None) -> bool:
    """Does healing `name` (toward `peers`, None = all) remove this [node, peer] cut?"""
    if name not in cut:
        return False
    return peers is None or bool((set(cut) - {name}) & set(peers))


def _wait_reaped(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{p}").exists() for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def _has_children(rel: str) -> bool:
    base = lstate.CGROUP_V2 / rel
    return base.is_dir() and any(p.is_dir() for p in base.iterdir())


def _ssh_banner(addr: str) -> bool:
    try:
        with socket.create_connection((addr, 22), timeout=1) as s:
            s.settimeout(2)
            return s.recv(8).startswith(b"SSH-")
    except OSError:
        return False


@contextlib.contextmanager
def _timed(times: dict[str, float], phase: str, say: Progress) -> Iterator[None]:
    t0 = time.monotonic()
    yield
    times[phase] = round(time.monotonic() - t0, 2)
    say(f"{phase}: {times[phase]:.2f} s")


def labs() -> list[lstate.LabState]:
    return lstate.all_labs()
