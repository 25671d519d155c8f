"""The dead-peer watch's clients' half, on the machine that runs the drill.

Why it is here: the drill's AMQP clients (the RPC and quorum-queue workloads) play OpenStack
services, and every host of OpenStack services runs `hastack-rabbit-peers`, which cuts that host's
connections to a broker whose host went silent (agents/rabbit_peers.py). So that the drill's
clients meet a dead broker as the services do, the drill runs the same program, in its cut-only
mode (`--cut`, no broker to drop), on its own machine for the length of the run, when the topology
turns the watch on (`rabbitmq.peer_watch`). Its lines go on the timeline as notes (`watch: ...`).
It ends with the run (SIGTERM, then SIGKILL, to the process it started), and stays in the drill's
process group, so a signal to the drill's group (Ctrl-C, a CI timeout) ends it too. Cutting a
socket needs root (the kernel's SOCK_DESTROY); without root the program says once that it could not
cut (the note), and the clients wait for their heartbeat as on a host without the watch.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from pathlib import Path

from hastack.agents import rabbit_peers
from hastack.components import rabbitmq
from hastack.drills.samples import Recorder
from hastack.topology.model import Topology

PROGRAM = Path(rabbit_peers.__file__)


def cut_argv(topo: Topology) -> list[str] | None:
    """The watch's command line for a host that runs no broker, as the unit renders it for one."""
    if not rabbitmq.peer_watch(topo):
        return None
    t = topo.tuning.rabbitmq
    return [sys.executable, str(PROGRAM), "--cut", str(rabbitmq.AMQP_PORT), f"{t.dead_peer_after_s:g}",
            f"{rabbitmq.PEERS_EVERY_S:g}", str(rabbitmq.EPMD_PORT),
            *(f"{rabbitmq.nodename(n)}={n.address}" for n in topo.brokers)]


class ClientCut:
    name = "client-cut"

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv

    def prepare(self) -> None:
        pass

    def run(self, rec: Recorder, stop: threading.Event, duration: float) -> None:
        proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                rec.event("note", f"watch: {line.strip()}")

        reader = threading.Thread(target=read, name="drill-client-cut-log", daemon=True)
        reader.start()
        try:
            stop.wait(duration)
        finally:
            for signal_it, wait in ((proc.terminate, 5.0), (proc.kill, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    signal_it()
                try:
                    proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            reader.join(timeout=5)

    def verify(self, rec: Recorder) -> None:
        pass
