"""One lab node: its disk (an overlay upper on the shared image), its identity, its boot and power-off.

Why identity goes into the upper layer before the first boot: hostname, machine-id and SSH host keys
shared through the image made two nodes the same machine (corosync picked the wrong node id).
The upper layer persists across power cycles, like a disk; the network namespace does not.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from hastack import safefs
from hastack.lab import cgroup, net
from hastack.lab.errors import LabError
from hastack.lab.image import FENCE_AGENT
from hastack.lab.state import POWER_GUEST_DIR, LabState, NodeState

CAPABILITIES = "CAP_NET_ADMIN,CAP_NET_RAW,CAP_IPC_LOCK"
SSHD_CONF = "# written by hastack lab\nHostKey /etc/ssh/ssh_host_ed25519_key\nUseDNS no\n"
GUEST_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
             "LANG": "C.UTF-8", "TERM": "dumb"}


@dataclass(frozen=True)
class Identity:
    """What makes a node itself; written once, when its disk is created."""

    hostname: str
    hosts: str
    host_key: str  # OpenSSH private key text
    host_key_pub: str
    authorized_key: str


def paths(node: NodeState) -> dict[str, Path]:
    d = Path(node.dir)
    return {"upper": d / "upper", "work": d / "work", "root": d / "root", "console": d / "console.log"}


def _mkdirs(upper: Path, lower: Path, rel: str) -> Path:
    """Create rel in the upper layer with the mode and owner the image has, so the overlay shows the same."""
    target, ref = upper, lower
    for part in Path(rel).parts:
        target, ref = target / part, ref / part
        if target.is_dir():
            continue
        target.mkdir()
        if ref.is_dir():
            st = ref.stat()
            os.chmod(target, stat.S_IMODE(st.st_mode))
            os.chown(target, st.st_uid, st.st_gid)
    return target


def _put(upper: Path, lower: Path, rel: str, text: str, mode: int = 0o644) -> None:
    parent = _mkdirs(upper, lower, str(Path(rel).parent))
    f = parent / Path(rel).name
    f.write_text(text)
    os.chmod(f, mode)


def create_disk(state: LabState, node: NodeState, ident: Identity) -> None:
    """A fresh upper layer holding only this node's identity (and the lab's current fence agent)."""
    p, lower = paths(node), Path(state.rootfs)
    for key in ("upper", "work", "root"):
        p[key].mkdir(parents=True, exist_ok=True)
    up = p["upper"]
    _put(up, lower, "etc/hostname", ident.hostname + "\n")
    _put(up, lower, "etc/machine-id", uuid.uuid4().hex + "\n", 0o444)
    _put(up, lower, "etc/hosts", ident.hosts)
    _put(up, lower, "etc/ssh/ssh_host_ed25519_key", ident.host_key, 0o600)
    _put(up, lower, "etc/ssh/ssh_host_ed25519_key.pub", ident.host_key_pub)
    _put(up, lower, "etc/ssh/sshd_config.d/hastack-lab.conf", SSHD_CONF)
    _put(up, lower, "root/.ssh/authorized_keys", ident.authorized_key, 0o600)
    os.chmod(up / "root/.ssh", 0o700)
    wants = _mkdirs(up, lower, "etc/systemd/system/multi-user.target.wants")
    (wants / "ssh.service").symlink_to("/lib/systemd/system/ssh.service")
    refresh_fence_agent(node)


def refresh_fence_agent(node: NodeState) -> None:
    """The agent in the image is the one of build time; every boot gets the current one.

    The upper layer is the node's disk: its root may have planted a link at usr, usr/sbin or the
    agent's own name pointing into the host. Every directory is opened without following links and
    the file is replaced by rename (safefs), so a planted link stops the refresh or is replaced;
    nothing outside the node's disk is ever written."""
    upper = safefs.open_dir(paths(node)["upper"])
    try:
        with safefs.subdir(upper, ("usr", "sbin")) as sbin:
            safefs.write_at(sbin, "fence_hastack", FENCE_AGENT.read_bytes(), 0o755)
    except safefs.UnsafePath as exc:
        raise LabError("node-disk-link", f"{node.name}: a symbolic link in its disk at {exc.filename}",
                       "the node's root replaced a directory by a link; power it off and remove the link "
                       "from its upper layer") from None
    finally:
        os.close(upper)


def nspawn_argv(state: LabState, node: NodeState) -> list[str]:
    p = paths(node)
    return ["systemd-nspawn", "--quiet", "--boot", "--register=no", "--keep-unit",
            f"--directory={p['root']}", f"--machine={node.name}",
            f"--network-namespace-path=/run/netns/{node.netns}", f"--capability={CAPABILITIES}",
            f"--bind-ro={state.run_dir}/power:{POWER_GUEST_DIR}", "--resolv-conf=off", "--timezone=off",
            "--link-journal=no", "--console=read-only"]


def boot(state: LabState, node: NodeState) -> int:
    """Power on: fresh netns + veth, then the launcher in the node's own cgroup. Returns its pid."""
    if cgroup.populated(node.cgroup):
        raise LabError("node-running", f"{node.name} still has processes", "power it off first")
    net.node_link(state, node)
    refresh_fence_agent(node)
    p = paths(node)
    argv = ["unshare", "--mount", "--propagation", "private", sys.executable, "-m", "hastack.lab.launch",
            "--cgroup", node.cgroup, "--lower", state.rootfs, "--upper", str(p["upper"]),
            "--work", str(p["work"]), "--merged", str(p["root"]), "--", *nspawn_argv(state, node)]
    cgroup.create(node.cgroup)
    with p["console"].open("a") as console:
        console.write(f"\n--- power on {time.strftime('%Y-%m-%dT%H:%M:%S')} ---\n")
        console.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd="/")
    return proc.pid


def power_off(node: NodeState) -> bool:
    """Pull the plug: link down first (no last words on the wire), then kill every process of the node."""
    net.link_down(node)
    if cgroup.is_frozen(node.cgroup):
        cgroup.freeze(node.cgroup, False)
    return cgroup.kill(node.cgroup)


def shutdown(nodes: list[NodeState], timeout: float) -> None:
    """Clean stop: ask every node's nspawn to halt the container, wait (bounded), then pull the plugs."""
    for node in nodes:
        if node.pid and node.pid in cgroup.pids(node.cgroup):
            if cgroup.is_frozen(node.cgroup):
                cgroup.freeze(node.cgroup, False)
            os.kill(node.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(cgroup.populated(n.cgroup) for n in nodes) and time.monotonic() < deadline:
        time.sleep(0.1)
    for node in nodes:
        power_off(node)


def is_on(node: NodeState) -> bool:
    return cgroup.populated(node.cgroup)


def leader(node: NodeState) -> int | None:
    """PID (host view) of the node's init: the cgroup member that is PID 1 of its own namespace."""
    for pid in cgroup.pids(node.cgroup):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("NSpid:") and line.split()[2:] == ["1"]:
                return pid
    return None


def _proc_of(node: NodeState, pid: int | None) -> int | None:
    """An open /proc/<pid> of a process in the node's own network namespace (checked against
    /run/netns/NAME, so a recycled pid is refused), or None."""
    if pid is None:
        return None
    try:
        fd = os.open(f"/proc/{pid}", os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        mine, theirs = os.stat("ns/net", dir_fd=fd), os.stat(f"/run/netns/{node.netns}")
        if (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def fib_tries(nodes: list[NodeState], leaders: dict[str, int]) -> dict[str, str | None]:
    """Each node's /proc/net/fib_trie, read from the host in one pass (None: the node is off).

    Why not a process per node: under load a process per node spread the readings over hundreds of
    milliseconds, and a VIP that moved between two of them was seen on both nodes (a split brain
    that never was). Here every /proc is opened and checked first, then the files are read back to
    back. `leaders` caches each node's init pid between calls (updated here)."""
    fds: dict[str, int | None] = {}
    try:
        for n in nodes:
            fd = _proc_of(n, leaders.get(n.name))
            if fd is None:
                pid = leader(n)
                fd = _proc_of(n, pid)
                if fd is not None and pid is not None:
                    leaders[n.name] = pid
            fds[n.name] = fd
        return {name: _read_at(fd, "net/fib_trie") for name, fd in fds.items()}
    finally:
        for fd in fds.values():
            if fd is not None:
                os.close(fd)


def _read_at(dir_fd: int | None, path: str) -> str | None:
    if dir_fd is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks).decode("ascii", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def enter_argv(node: NodeState, argv: list[str]) -> list[str]:
    """argv that runs inside the node's namespaces (works even when its links are cut)."""
    pid = leader(node)
    if pid is None:
        raise LabError("node-off", f"{node.name} is not running", f"hastack lab power {node.name} on")
    env = [f"{k}={v}" for k, v in GUEST_ENV.items()]
    return ["nsenter", f"--target={pid}", "--mount", "--uts", "--ipc", "--net", "--pid", "--root", "--wd",
            "env", "-i", *env, *argv]


def memory_pss(node: NodeState) -> int:
    """Proportional set size of all the node's processes, in bytes (what the node really costs)."""
    total = 0
    for pid in cgroup.pids(node.cgroup):
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
    return total
