"""The lab power switch: who may switch what (the caller as the kernel names it), and a silent client
delaying nobody."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hastack.lab import power
from hastack.lab import state as lstate
from hastack.lab.errors import LabError
from hastack.topology.model import Topology


def lab(topo: Topology) -> lstate.LabState:
    return lstate.plan(topo, Path("x.yml"), Path("/rootfs"))


def test_only_network_nodes_may_fence_and_only_their_peers(seed: Topology, four: Topology) -> None:
    st = lab(four)
    assert st.nodes["net-1"].fences == ["net-2"] and st.nodes["net-2"].fences == ["net-1"]
    assert all(not st.nodes[n].fences for n in ("ctl-1", "ctl-2", "cmp-1"))
    assert lab(seed).nodes["net-1"].fences == ["net-2"]
    off = four.model_copy(update={"fencing": four.fencing.model_copy(update={"enabled": False})})
    assert not any(ns.fences for ns in lab(off).nodes.values())


def test_the_caller_is_named_by_its_cgroup(four: Topology) -> None:
    st = lab(four)
    assert power.caller(st, "/hastack/four/net-1/payload/system.slice/pacemaker.service") == "net-1"
    assert power.caller(st, "/hastack/four/ctl-1") == "ctl-1"
    assert power.caller(st, "/hastack/four/ctl-10/payload") is None  # not ctl-1 by a shared prefix
    assert power.caller(st, "/user.slice/user-0.slice/session-1.scope") is None  # the host
    assert power.caller(st, "/hastack/four/power-switch") is None
    with pytest.raises(LabError) as err:
        power.caller(st, "/hastack/seed/ctl-1/payload")
    assert err.value.code == "power-denied"


@pytest.mark.parametrize(("who", "op", "target", "ok"), [
    (None, "off", "ctl-1", True),            # the host (operator, drills) switches anything
    ("net-1", "reboot", "net-2", True),      # Pacemaker fencing its peer
    ("net-1", "status", "ctl-1", True),      # reading is harmless
    ("net-1", "list", "", True),
    ("net-1", "off", "ctl-1", False),        # a network node's root may not power off a controller
    ("net-1", "off", "net-1", False),
    ("ctl-1", "reboot", "net-1", False),     # controllers fence nothing
    ("cmp-1", "on", "cmp-1", False),
])
def test_who_may_switch_what(four: Topology, who: str | None, op: str, target: str, ok: bool) -> None:
    st = lab(four)
    req = {"op": op, "node": target}
    if ok:
        power.allowed(st, who, req)
    else:
        with pytest.raises(LabError) as err:
            power.allowed(st, who, req)
        assert err.value.code == "power-denied"


def test_the_kernel_gives_the_callers_pid(tmp_path: Path) -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        assert power.peer_pid(a) == os.getpid()
    assert power.cgroup_of(os.getpid()).startswith("/")


class Answering:
    """Stands in for Switch: answers at once and records the peer pid the server read."""

    def __init__(self) -> None:
        self.peers: list[int | None] = []

    def handle(self, req: dict[str, Any], peer_pid: int | None = None) -> dict[str, Any]:
        self.peers.append(peer_pid)
        return {"ok": True, "nodes": {}}

    def reap(self) -> None:
        pass


def test_a_silent_client_delays_nobody(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(power._Handler, "timeout", 1.0)
    sock = str(tmp_path / "power.sock")
    switch = Answering()
    server = power._Server(sock, switch)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        silent.connect(sock)  # connects and sends nothing
        t0 = time.monotonic()
        answer = power.ask(sock, {"op": "list"}, timeout=5)
        assert answer["ok"] and time.monotonic() - t0 < 0.9
        assert switch.peers == [os.getpid()]
        silent.settimeout(3)
        assert silent.recv(100) == b""  # dropped after the read deadline, no answer
        silent.close()
        # a line that is not a JSON object gets an error, not a crash
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.connect(sock)
            c.sendall(b"[1]\n")
            assert not json.loads(c.makefile("rb").readline())["ok"]
    finally:
        server.shutdown()
        server.server_close()
