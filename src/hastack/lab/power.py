"""The lab's power switch: a daemon on the host, reached over a unix socket (also from inside nodes).

Why a daemon and not direct calls: fencing happens from *inside* a node (Pacemaker runs
fence_hastack there), and a node must not be able to touch the host otherwise. One process owns
power changes, so two fencing requests never race. Run as `python -m hastack.lab.power LAB`.

Protocol: one JSON object per line each way.
  {"op": "list"}                          -> {"ok": true, "nodes": {"ctl-1": "on", ...}}
  {"op": "status"|"on"|"off"|"reboot", "node": N} -> {"ok": true, "state": "on"|"off"}
  errors                                  -> {"ok": false, "error": "..."}

Who may ask: the socket is 0600 root on the host and bind-mounted read-only into every node, so
every node's root can connect. The caller is identified by the kernel (SO_PEERCRED: its pid, then
the cgroup that pid lives in): a host process may switch any node; a node may only read states and
switch its own Pacemaker peers (`NodeState.fences`), so a node's root cannot power off a controller.
Each connection has its own thread and a read deadline, and power changes take one lock: a client
that connects and sends nothing delays nobody's fencing.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from hastack.lab import cgroup, node, state
from hastack.lab.errors import LabError

REBOOT_EXIT = 133  # systemd-nspawn's exit status when the container asked for a reboot
READ_DEADLINE_S = 5.0  # a request line must arrive within this; fence agents send theirs at once
SWITCHING = ("on", "off", "reboot", "reset")


def cgroup_of(pid: int) -> str:
    """The cgroup v2 path of a process as this (host) process sees it, e.g. /hastack/four/ctl-1/payload/..."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    return ""


def caller(st: state.LabState, cgroup_path: str) -> str | None:
    """The lab node a cgroup path belongs to; None for the host. A process in another lab's (or an
    unknown) cgroup under the labs' tree is refused outright."""
    for name, ns in st.nodes.items():
        base = "/" + ns.cgroup
        if cgroup_path == base or cgroup_path.startswith(base + "/"):
            return name
    labs_root = "/" + st.cgroup.rsplit("/", 1)[0]
    if cgroup_path.startswith(labs_root + "/") and not cgroup_path.startswith("/" + st.cgroup + "/"):
        raise LabError("power-denied", f"a process of another lab ({cgroup_path}) asked this lab's switch")
    return None


def allowed(st: state.LabState, who: str | None, req: dict[str, Any]) -> None:
    """Raise unless `who` (None: the host) may make this request."""
    op, target = req.get("op"), str(req.get("node", ""))
    if who is None or op not in SWITCHING:
        return
    if target not in st.nodes[who].fences:
        raise LabError("power-denied", f"{who} may not switch {target or 'that'}",
                       f"a node may switch only its Pacemaker peers: {', '.join(st.nodes[who].fences) or 'none'}")


class Switch:
    """Power operations on the nodes of one lab; the daemon serialises calls to it."""

    def __init__(self, lab: str) -> None:
        self.lab = lab
        self.lock = threading.RLock()  # one power change at a time, whichever connection asks

    def _node(self, st: state.LabState, name: str) -> state.NodeState:
        if name not in st.nodes:
            raise LabError("no-such-node", f"lab {self.lab} has no node {name!r}",
                           f"one of: {', '.join(st.nodes)}")
        return st.nodes[name]

    def status(self, name: str) -> str:
        st = state.read(self.lab)
        assert st is not None
        return "on" if node.is_on(self._node(st, name)) else "off"

    def listing(self) -> dict[str, str]:
        st = state.read(self.lab)
        assert st is not None
        return {n: ("on" if node.is_on(ns) else "off") for n, ns in st.nodes.items()}

    def off(self, name: str) -> str:
        with state.update(self.lab) as st:
            ns = self._node(st, name)
            if not node.power_off(ns):
                raise LabError("power-off-failed", f"{name} still has processes after SIGKILL", "see dmesg")
            ns.power, ns.pid = "off", None
        return "off"

    def on(self, name: str) -> str:
        with state.update(self.lab) as st:
            ns = self._node(st, name)
            if not node.is_on(ns):
                ns.pid = node.boot(st, ns)
            ns.power = "on"
        return "on"

    def handle(self, req: dict[str, Any], peer_pid: int | None = None) -> dict[str, Any]:
        """Answer one request; `peer_pid` is the caller's pid from the kernel (None: trusted, in-process)."""
        if peer_pid is not None:
            st = state.read(self.lab)
            assert st is not None
            allowed(st, caller(st, cgroup_of(peer_pid)), req)
        with self.lock:
            return self._handle(req)

    def _handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op, name = req.get("op"), str(req.get("node", ""))
        if op == "list":
            return {"ok": True, "nodes": self.listing()}
        if op == "status":
            return {"ok": True, "state": self.status(name)}
        if op == "off":
            return {"ok": True, "state": self.off(name)}
        if op == "on":
            return {"ok": True, "state": self.on(name)}
        if op in ("reboot", "reset"):
            self.off(name)
            return {"ok": True, "state": self.on(name)}
        return {"ok": False, "error": f"unknown op {op!r} (list, status, on, off, reboot)"}

    def reap(self) -> None:
        """Collect exited launchers (they are this daemon's children).

        A node that ran `reboot` inside makes nspawn exit with 133: boot it again, as its
        firmware would. Any other exit is a node that powered itself off: it stays off.
        """
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if os.waitstatus_to_exitcode(status) == REBOOT_EXIT:
                with self.lock:
                    self._rebooted(pid)

    def _rebooted(self, pid: int) -> None:
        st = state.read(self.lab)
        name = next((n for n, ns in (st.nodes.items() if st else []) if ns.pid == pid), None)
        if name is not None:
            try:
                self.off(name)
                self.on(name)
            except LabError as exc:
                print(f"reboot of {name} failed: {exc}", flush=True)


def peer_pid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, _uid, _gid = struct.unpack("3i", creds)
    return int(pid)


class _Handler(socketserver.StreamRequestHandler):
    server: _Server
    timeout = READ_DEADLINE_S  # StreamRequestHandler sets it on the connection: a silent client is dropped

    def handle(self) -> None:
        try:
            line = self.rfile.readline(65536)
            req = json.loads(line.decode() or "{}")
            if not isinstance(req, dict):
                raise ValueError("a request is a JSON object")
            answer = self.server.switch.handle(req, peer_pid(self.connection))
        except TimeoutError:
            return  # sent nothing in time: nothing to answer
        except LabError as exc:
            answer = {"ok": False, "error": str(exc)}
        except (ValueError, OSError) as exc:
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        with contextlib.suppress(OSError):
            self.wfile.write((json.dumps(answer) + "\n").encode())


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, switch: Switch) -> None:
        self.switch = switch
        super().__init__(path, _Handler)

    def service_actions(self) -> None:
        self.switch.reap()


def serve(lab: str) -> None:
    st = state.read(lab)
    if st is None:
        raise SystemExit(f"no lab {lab}")
    sock = Path(st.socket)
    sock.parent.mkdir(parents=True, exist_ok=True)
    sock.unlink(missing_ok=True)
    server = _Server(str(sock), Switch(lab))
    os.chmod(sock, 0o600)
    print(f"power switch of lab {lab} listening on {sock}", flush=True)
    server.serve_forever(poll_interval=0.5)


# -- client ----------------------------------------------------------------------------------------------

def ask(sock: str, request: dict[str, str], timeout: float = 60.0) -> dict[str, Any]:
    """One request to the power switch; raises LabError when it is unreachable or refuses."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(sock)
            conn.sendall((json.dumps(request) + "\n").encode())
            data = conn.makefile("rb").readline()
    except OSError as exc:
        raise LabError("power-switch-down", f"power switch at {sock} unreachable: {exc}",
                       "run `hastack lab up` again (it restarts the switch)") from exc
    answer: dict[str, Any] = json.loads(data.decode() or '{"ok": false, "error": "no answer"}')
    if not answer.get("ok"):
        raise LabError("power-refused", str(answer.get("error")))
    return answer


def start(st: state.LabState, timeout: float = 10.0) -> int:
    """Start the daemon in the lab's power-switch cgroup; returns its pid once the socket answers."""
    log = Path(st.run_dir) / "power-switch.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cgroup.create(st.power_cgroup)
    with log.open("a") as out:
        proc = subprocess.Popen([sys.executable, "-m", "hastack.lab.power", st.name],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd="/")
    cgroup.join(st.power_cgroup, proc.pid)
    deadline = time.monotonic() + timeout
    while True:
        try:
            ask(st.socket, {"op": "list"}, timeout=2)
            return proc.pid
        except LabError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise LabError("power-switch-failed", "the lab power switch did not start",
                               f"see {log}") from None
            time.sleep(0.05)


def main() -> None:
    serve(sys.argv[1])


if __name__ == "__main__":
    main()
