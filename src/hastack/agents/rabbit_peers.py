#!/usr/bin/python3
"""hastack broker peer watch, run as hastack-rabbit-peers.service on each RabbitMQ broker and on every
host of OpenStack services (their AMQP clients).

Why: Erlang declares a silent peer down only after `net_ticktime` (0.75-1.25 x 60 s). Until then
RabbitMQ 3.10 holds every metadata operation that involves the dead member: a reconnecting client's
reply-queue declaration, a publisher's first registration with a queue whose recorded leader was
there. In the lab an RPC client saw no answer for 68-80 s after a controller's power-off although
its own broker was alive (README, "Where the time goes"). A shorter `net_ticktime` (15 s) was
tried: on a loaded 2-core host the brokers missed each other's ticks and a cut became a partition.

Rule: every EVERY seconds, a TCP connection to each peer's epmd port is tried. Accepted or refused
(RST), the peer's kernel answered: its host is up, whatever its processes do (a busy, frozen or
stopped broker is not this watch's business; Erlang's own tick handles those). A peer whose kernel
has not answered for DEAD_AFTER seconds (powered off, crashed, cut off) is dropped at once
(`erlang:disconnect_node/1`): the local broker gets its `nodedown` then instead of a minute later,
and does what it does at a tick timeout (pause_minority: it keeps serving with a majority, pauses
without one). The kernel answers a SYN however loaded the host is, which is what a CPU-starved
Erlang tick cannot promise.

After such an episode, when a dropped peer answers again, the watch looks at its own broker for a
while (AFTER_S, every CHECK_EVERY_S): a cut that ends while the two sides are dropping each other can
leave a partition that pause_minority never heals, or an app that stays stopped although its node
sees the majority again (docs/reliability/rabbit-partition-at-nodedown-2026-12-06). The broker on
the minority side of a recorded partition (it records one with at least a majority of all brokers),
or one whose app stays stopped for STUCK_S while its node is connected to a majority of the
brokers' Erlang nodes, is restarted: it rejoins at
boot, and its quorum queues lose nothing (their majority is on the other side). A broker on the
majority side never restarts itself; the minority's restart clears its record.

The drop (`--drop`) runs only on a broker with `pause_minority` (hastack's choice with 3 brokers
or more; components/rabbitmq.py).

The clients' side (`--cut PORT`, on every host that runs OpenStack services, brokers or not): an
oslo.messaging client connected to a broker whose host went silent learns it only from its AMQP
heartbeat (`heartbeat_timeout_threshold`, 20 s, and the socket's TCP_USER_TIMEOUT set to the same):
until then its calls wait, measured at 27-31 s for an RPC call in the lab. While a peer stays
silent, the watch aborts every TCP connection of this host to that peer's AMQP port (`ss -K`, the
kernel's SOCK_DESTROY: the socket's owner gets ECONNABORTED at once), every round, so a client's
reconnection attempt to the dead broker fails at once too and it moves to the next broker of its
`transport_url`. Nothing is cut while the peer's kernel answers: a busy or stopped broker is the
heartbeat's business, and a stopped one refuses connections anyway.

Usage (from the unit, arguments rendered from the topology: numbers, ports, node names of
[a-z0-9-] and validated addresses):
    rabbit-peers [--drop] [--cut AMQP_PORT] DEAD_AFTER EVERY PORT rabbit@NAME=ADDRESS [rabbit@NAME=ADDRESS ...]
Exit 2: bad arguments.

This file is copied to the node and run by the node's own Python 3 (standard library only).
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

AFTER_S = 120.0
"""How long after a dropped peer answers again the watch keeps looking at its own broker."""
CHECK_EVERY_S = 10.0
STUCK_S = 30.0
"""An app stopped this long while connected to a majority is not a pause (a paused node restarts its
app within seconds of seeing the majority: 2.5 s measured in the lab)."""
CTL_TIMEOUT_S = 30.0
CUT_TIMEOUT_S = 5.0
RESTART_TIMEOUT_S = 330.0
NODE_PATTERN = re.compile(r"rabbit@[a-z0-9][a-z0-9-]{0,62}")
STATE_EVAL = ('lists:flatten(io_lib:format("~s|~s|~s", [rabbit:is_running(), '
              'string:join([atom_to_list(N) || N <- try rabbit_node_monitor:partitions() catch _:_ -> [] end], ","), '
              'string:join([atom_to_list(N) || N <- nodes()], ",")])).')
"""The local broker's view in one line: whether its app runs, the nodes it records a partition with,
and the Erlang nodes it is connected to (`rabbitmqctl` itself is a hidden node, not among them).
The node monitor runs inside the app: with the app stopped (paused, or stuck) there is no partition
record to read, hence the `try`."""
DROP_RETRY_MAX_S = 60.0
"""A failed drop is tried again after DEAD_AFTER, then twice as long each time, up to this."""


@dataclass(frozen=True)
class Args:
    dead_after: float
    every: float
    port: int
    peers: dict[str, str]
    """rabbit@name -> address"""
    drop: bool = False
    """This host runs a broker that drops the dead peers (`--drop`)."""
    cut: int = 0
    """The AMQP port whose connections to a dead peer are cut (`--cut`); 0: none."""


USAGE = "usage: rabbit-peers [--drop] [--cut AMQP_PORT] DEAD_AFTER EVERY PORT rabbit@NAME=ADDRESS ..."


def port_of(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"bad port {text!r}")
    return port


def parse(argv: Sequence[str]) -> Args:
    """ValueError on anything but the options, two durations, a port and rabbit@name=address pairs."""
    rest, drop, cut = list(argv), False, 0
    while rest and rest[0].startswith("--"):
        opt = rest.pop(0)
        if opt == "--drop":
            drop = True
        elif opt == "--cut" and rest:
            cut = port_of(rest.pop(0))
        else:
            raise ValueError(f"unknown option {opt!r}; {USAGE}")
    if not (drop or cut):
        raise ValueError(f"nothing to do: neither --drop nor --cut; {USAGE}")
    if len(rest) < 4:
        raise ValueError(USAGE)
    dead_text, every_text, port_text, *items = rest
    dead_after, every = float(dead_text), float(every_text)
    if not (math.isfinite(dead_after) and 1 <= dead_after <= 300):
        raise ValueError(f"DEAD_AFTER must be between 1 and 300 seconds, not {dead_text!r}")
    if not (math.isfinite(every) and 0.1 <= every <= dead_after):
        raise ValueError(f"EVERY must be between 0.1 s and DEAD_AFTER, not {every_text!r}")
    port = port_of(port_text)
    peers = {}
    for item in items:
        node, sep, address = item.partition("=")
        if not sep or not NODE_PATTERN.fullmatch(node):
            raise ValueError(f"not rabbit@NAME=ADDRESS: {item!r}")
        peers[node] = str(ipaddress.ip_address(address))
    return Args(dead_after, every, port, peers, drop, cut)


def answers(address: str, port: int, timeout: float) -> bool:
    """The peer's kernel answered a SYN: the connection was accepted or refused."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except ConnectionRefusedError:
        return True
    except OSError:  # timed out, no route, host unreachable
        return False


def minority(brokers: int, partitioned_from: int) -> bool:
    """This broker's side of a recorded partition holds no majority of all brokers."""
    return brokers - partitioned_from < brokers // 2 + 1


@dataclass(frozen=True)
class BrokerState:
    running: bool
    partitions: tuple[str, ...]
    connected: tuple[str, ...]


def parse_state(text: str) -> BrokerState | None:
    """STATE_EVAL's answer, e.g. `"true||rabbit@ctl-1,rabbit@net-1"`; None for anything else (the
    broker's Erlang node is down or did not answer)."""
    fields = text.strip().strip('"').split("|")
    if len(fields) != 3 or fields[0] not in ("true", "false"):
        return None

    def names(field: str) -> tuple[str, ...]:
        return tuple(p for p in field.split(",") if NODE_PATTERN.fullmatch(p))

    return BrokerState(fields[0] == "true", names(fields[1]), names(fields[2]))


def run_command(argv: list[str], timeout: float) -> tuple[int, str, str]:
    """(exit status, stdout, stderr). As root, Debian's rabbitmqctl runs the CLI under `su`, which
    passes a SIGTERM on to it but cannot pass a SIGKILL: a command that outlives `timeout` gets SIGTERM
    (its whole process group), then SIGKILL 5 s later, so no CLI is left waiting on a hung broker."""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, None)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                try:
                    proc.communicate(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            return 124, "", f"no answer within {timeout:g} s"
    return proc.returncode, out.strip(), err.strip()


Run = Callable[[list[str], float], tuple[int, str, str]]


@dataclass
class Watch:
    """The rule, with its clock, probe and commands given: tested without a broker."""

    args: Args
    clock: Callable[[], float] = time.monotonic
    probe: Callable[[str], bool] = lambda address: False
    run: Run = run_command
    say: Callable[[str], None] = lambda line: print(line, flush=True)
    last_seen: dict[str, float] = field(default_factory=dict)
    silent: set[str] = field(default_factory=set)
    """Peers whose host has not answered for DEAD_AFTER."""
    dropped: set[str] = field(default_factory=set)
    """Silent peers this broker has dropped (`--drop`)."""
    cut_failed: set[str] = field(default_factory=set)
    retry_at: dict[str, float] = field(default_factory=dict)
    retry_after: dict[str, float] = field(default_factory=dict)
    look_until: float = -math.inf
    next_look: float = -math.inf
    stopped_since: float | None = None

    def __post_init__(self) -> None:
        started = self.clock()  # every peer gets DEAD_AFTER to answer before it counts as gone
        self.last_seen = {p: started for p in self.args.peers}

    def step(self) -> None:
        """One round: probe every peer, drop the dead ones, cut this host's connections to them, look at
        the broker after an episode."""
        peers = list(self.args.peers)
        with ThreadPoolExecutor(max_workers=len(peers) or 1) as pool:
            seen = dict(zip(peers, pool.map(lambda p: self.probe(self.args.peers[p]), peers), strict=True))
        now = self.clock()
        for peer, ok in seen.items():
            if not ok:
                continue
            self.last_seen[peer] = now
            if peer in self.silent:
                self.silent.discard(peer)
                self.cut_failed.discard(peer)
                if peer in self.dropped:
                    self.dropped.discard(peer)
                    self.say(f"{peer} answers again: looking at this broker for partitions for {AFTER_S:g} s")
                    self.look_from(now)
                else:
                    self.say(f"{peer} answers again")
            self.retry_at.pop(peer, None)
            self.retry_after.pop(peer, None)
        gone = [p for p in peers if now - self.last_seen[p] >= self.args.dead_after]
        if not self.args.drop and (new := [p for p in gone if p not in self.silent]):
            self.say(", ".join(f"{p} ({self.args.peers[p]}) silent for {now - self.last_seen[p]:.1f} s" for p in new))
        self.silent.update(gone)
        if self.args.cut:  # first: a drop's rabbitmqctl takes seconds, the clients should not wait for it
            for peer in gone:
                self.cut(peer, now)
        dead = [p for p in gone if p not in self.dropped and now >= self.retry_at.get(p, -math.inf)]
        if self.args.drop and dead:
            self.drop(dead, now)
        if now < self.look_until and now >= self.next_look:
            self.next_look = now + CHECK_EVERY_S
            self.look(now)

    def cut(self, peer: str, now: float) -> None:
        """Abort this host's connections to a silent peer's AMQP port (ESTABLISHED or still
        connecting), so their clients move to another broker now instead of at their heartbeat.
        `ss -K` exits 0 even when the kernel refused (no root: "SOCK_DESTROY answers: Operation not
        permitted" on stderr; no CONFIG_INET_DIAG_DESTROY: nothing at all), so what it left is listed
        after it: an established connection to a silent host is one it did not end."""
        address = self.args.peers[peer]
        where = ["dst", f"[{address}]" if ":" in address else address, "dport", "=", f":{self.args.cut}"]
        try:
            code, out, err = self.run(["ss", "-K", "-H", "-t", "-n", *where], CUT_TIMEOUT_S)
            _, left, _ = self.run(["ss", "-H", "-t", "-n", "state", "established", *where], CUT_TIMEOUT_S)
        except OSError as exc:  # no ss
            code, out, err, left = 127, "", str(exc), ""
        if code != 0 or err or left.strip():
            if peer not in self.cut_failed:  # said once per episode, tried every round
                self.cut_failed.add(peer)
                why = f"ss exit {code}: {(out + ' ' + err).strip()[-300:]}" if code != 0 or err else (
                    f"{len(left.splitlines())} left established (the kernel ended none: CONFIG_INET_DIAG_DESTROY?)")
                self.say(f"could not cut connections to {peer} ({address}:{self.args.cut}): {why}")
            return
        if n := len(out.splitlines()):
            self.say(f"cut {n} connection{'s' if n > 1 else ''} to {peer}'s AMQP port ({address}:{self.args.cut}: "
                     f"no answer for {now - self.last_seen[peer]:.1f} s)")

    def look_from(self, now: float) -> None:
        """A new window of looks at this broker; what an earlier window saw does not carry over."""
        self.look_until, self.next_look, self.stopped_since = now + AFTER_S, now + CHECK_EVERY_S, None

    def drop(self, dead: list[str], now: float) -> None:
        nodes = ",".join(f"'{p}'" for p in dead)
        code, out, err = self.run(["rabbitmqctl", "-q", "eval", f"[erlang:disconnect_node(N) || N <- [{nodes}]]."],
                                  CTL_TIMEOUT_S)
        silent = ", ".join(f"{p} ({self.args.peers[p]}: no answer for {now - self.last_seen[p]:.1f} s)" for p in dead)
        if code == 0:
            self.dropped.update(dead)
            self.say(f"dropped {silent}: {out}")
        else:
            for p in dead:  # a broker that cannot be asked is not asked every few seconds
                wait = min(self.retry_after.get(p, self.args.dead_after / 2) * 2, DROP_RETRY_MAX_S)
                self.retry_after[p], self.retry_at[p] = wait, now + wait
            self.say(f"could not drop {silent}: rabbitmqctl exit {code}: {(out + ' ' + err).strip()[-300:]}")

    def look(self, now: float) -> None:
        """The minority side of a recorded partition restarts; so does an app stopped for STUCK_S
        while this node's Erlang is connected to a majority (a paused node is not: it pauses exactly
        while it cannot see one, and starts again within seconds once it can)."""
        code, out, _ = self.run(["rabbitmqctl", "-q", "eval", STATE_EVAL], CTL_TIMEOUT_S)
        state = parse_state(out) if code == 0 else None
        if state is None:
            self.stopped_since = None
            return
        brokers = len(self.args.peers) + 1
        if state.partitions and minority(brokers, len(state.partitions)):
            self.restart(f"this broker records a partition with {', '.join(state.partitions)}: it is on the "
                         f"minority side ({brokers - len(state.partitions)} of {brokers} brokers)")
            return
        connected = sum(p in self.args.peers for p in state.connected)
        if state.running or minority(brokers, brokers - 1 - connected):
            self.stopped_since = None
            return
        self.stopped_since = now if self.stopped_since is None else self.stopped_since
        if now - self.stopped_since >= STUCK_S:
            self.restart(f"its app has been stopped for {now - self.stopped_since:.0f} s while connected to "
                         f"{connected} of {brokers - 1} peers")

    def restart(self, why: str) -> None:
        self.say(f"restarting rabbitmq-server: {why}")
        code, out, err = self.run(["systemctl", "restart", "rabbitmq-server"], RESTART_TIMEOUT_S)
        self.say("rabbitmq-server restarted" if code == 0 else
                 f"restart failed: exit {code}: {(out + ' ' + err).strip()[-300:]}")
        self.look_from(self.clock())


def main(argv: Sequence[str]) -> int:
    try:
        args = parse(argv)
    except ValueError as exc:
        print(f"rabbit-peers: {exc}", file=sys.stderr)
        return 2
    timeout = min(args.every, 1.0)
    watch = Watch(args, probe=lambda address: answers(address, args.port, timeout))
    acts = [w for w, on in (("dropped", args.drop), (f"cut from this host's clients (port {args.cut})", args.cut))
            if on]
    watch.say(f"watching {', '.join(f'{p} ({a})' for p, a in args.peers.items())}: a peer whose host does not "
              f"answer for {args.dead_after:g} s is {' and '.join(acts)}")
    while True:
        t0 = time.monotonic()
        watch.step()
        time.sleep(max(0.0, args.every - (time.monotonic() - t0)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
