#!/usr/bin/python3
"""hastack VIP quorum watch, run on each controller as hastack-vip-quorum.service; keepalived tracks
the file it writes (track_file quorum).

VRRP has no quorum. A master cut off from the other controllers hears no adverts, which is what a
master normally hears anyway, so it keeps the VIP while the others elect a new master: the VIP is
on two nodes for as long as the partition lasts (the campaign's `partition-vip-controller` nemesis
measured 198 split-brain samples over a 20 s hold). A backup cut off the same way becomes master
itself and points the clients' ARP caches at its own MAC. This watch puts such a node in FAULT.

Rule: the node may hold the VIP while it sees a majority of the cluster's votes, counting itself.
The votes are Galera's (every controller, and garbd on a non-controller arbitrator): the VIP then
stays on the side that can still commit writes. A peer counts as seen when a TCP connection to its
Galera group port is accepted *or refused*: a refusal (RST) comes from the peer's kernel, so the
path to it works even when mariadbd or garbd is down there. Silence (a cut, a dead or powered-off
node) counts as unseen.

Why a daemon and a file rather than a track script: keepalived runs scripts at most once a second,
so the first version (a `vrrp_script`, fall 2) let an isolated master keep the VIP for about 2 s
beside the new one (22 split-brain samples over 2.1 s). The other side takes the VIP
3 x advert_int + skew after the last advert it heard, at the earliest 2.26 x advert_int after the
cut (the last advert left up to one interval before it). This watch starts a connection attempt to
every peer every EVERY seconds, counts a peer seen when one of them was answered within the last
WINDOW seconds, and rewrites the file the moment the verdict changes; keepalived reads it on the
inotify event. With EVERY = advert_int / 4 and WINDOW = 1.5 x advert_int (components/keepalived.py)
a node cut off from the majority is in FAULT at most 1.75 x advert_int after the cut, before the
other side takes over, and a peer must miss six probes in a row to count as gone.

The false alarm this avoids by construction: a loaded peer. A SYN is answered by the peer's kernel,
not by a process that may be starved of CPU; this process itself runs realtime beside keepalived's
VRRP process (the unit's CPUSchedulingPolicy).

Usage (from the unit, arguments rendered from the topology: a path, numbers, addresses and ports):
    vip-quorum FILE EVERY WINDOW NEED HOST:PORT [HOST:PORT ...]
FILE gets "0" while this node and at least NEED-1 peers are seen, "1" otherwise. Exit 2: bad arguments.

This file is copied to the node and run by the node's own Python 3 (standard library only).
"""


from __future__ import annotations

import errno
import ipaddress
import math
import os
import re
import select
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

SEEN_ERRORS = frozenset({0, errno.ECONNREFUSED})
"""connect()'s outcome when the peer's kernel answered: accepted, or refused (RST)."""
REFRESH_S = 5.0
"""The verdict is written again this often even when unchanged: a file someone edited or
recreated is put right."""
FILE_PATTERN = re.compile(r"/run/[a-z0-9][a-z0-9._-]{0,63}")
Peer = tuple[str, int]


@dataclass(frozen=True)
class Args:
    file: str
    every: float
    window: float
    need: int
    peers: list[Peer]


def seconds(text: str, what: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and 0.001 <= value <= 60):
        raise ValueError(f"{what} must be between 0.001 and 60 seconds, not {text!r}")
    return value


def parse(argv: Sequence[str]) -> Args:
    """ValueError on anything that is not a file under /run, two durations, a count and
    IPv4/IPv6 address:port pairs."""
    if len(argv) < 4:
        raise ValueError("usage: vip-quorum FILE EVERY WINDOW NEED HOST:PORT ...")
    path, every, window, need_text, *items = argv
    if not FILE_PATTERN.fullmatch(path):
        raise ValueError(f"FILE must be a plain name under /run, not {path!r}")
    need = int(need_text)
    if need < 1:
        raise ValueError(f"NEED must be at least 1, not {need}")
    peers = []
    for item in items:
        host, sep, port = item.rpartition(":")
        if not sep:
            raise ValueError(f"not HOST:PORT: {item!r}")
        address = ipaddress.ip_address(host.strip("[]"))
        number = int(port)
        if not 0 < number < 65536:
            raise ValueError(f"bad port in {item!r}")
        peers.append((str(address), number))
    args = Args(path, seconds(every, "EVERY"), seconds(window, "WINDOW"), need, peers)
    if args.window < args.every:
        raise ValueError("WINDOW must be at least EVERY: a peer would never count as seen")
    return args


def has_quorum(need: int, seen: int) -> bool:
    """This node is one vote; `need` is the majority of all votes."""
    return 1 + seen >= need


@dataclass
class Watch:
    """Connection attempts in flight and when each peer was last answered; no I/O of its own
    beyond the sockets, so the rule is tested on real sockets with a chosen clock."""

    args: Args
    clock: Callable[[], float] = time.monotonic
    last_seen: dict[Peer, float] = field(default_factory=dict)
    pending: dict[int, tuple[socket.socket, Peer, float]] = field(default_factory=dict)
    poller: select.poll = field(default_factory=select.poll)

    def __post_init__(self) -> None:
        started = self.clock()  # every peer gets one window to answer before it counts as gone
        self.last_seen = {p: started for p in self.args.peers}

    def probe(self) -> None:
        """One connection attempt to every peer, without waiting."""
        now = self.clock()
        for peer in self.args.peers:
            host, port = peer
            s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            code = s.connect_ex((host, port))
            if code in (errno.EINPROGRESS, errno.EWOULDBLOCK):
                self.pending[s.fileno()] = (s, peer, now)
                self.poller.register(s.fileno(), select.POLLOUT)
                continue
            if code in SEEN_ERRORS:
                self.last_seen[peer] = now
            s.close()  # answered at once, or unreachable at once (no route): unseen

    def collect(self, wait_s: float) -> None:
        """Wait up to `wait_s` for answers; drop attempts older than the window (a cut link)."""
        for fd, _ in self.poller.poll(max(0.0, wait_s) * 1000):
            s, peer, _ = self.pending.pop(fd)
            self.poller.unregister(fd)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) in SEEN_ERRORS:
                self.last_seen[peer] = self.clock()
            s.close()
        oldest = self.clock() - self.args.window
        for fd, (s, _, started) in list(self.pending.items()):
            if started < oldest:
                del self.pending[fd]
                self.poller.unregister(fd)
                s.close()

    def seen(self) -> int:
        now = self.clock()
        return sum(now - t <= self.args.window for t in self.last_seen.values())

    def ok(self) -> bool:
        return has_quorum(self.args.need, self.seen())


def write(path: str, ok: bool) -> None:
    """In place: keepalived reads the file on inotify's close-after-write event."""
    with open(path, "w", encoding="ascii") as f:
        f.write("0\n" if ok else "1\n")


def run(args: Args, clock: Callable[[], float] = time.monotonic,
        stopped: Callable[[], bool] = lambda: False) -> None:
    """Until `stopped` (tests; the daemon runs until systemd stops it)."""
    watch = Watch(args, clock)
    verdict: bool | None = None
    written = -math.inf
    next_probe = clock()
    try:
        while not stopped():
            now = clock()
            if now >= next_probe:
                watch.probe()
                next_probe = max(next_probe + args.every, now)
            watch.collect(next_probe - clock())
            ok = watch.ok()
            if ok != verdict or clock() - written >= REFRESH_S:
                if ok != verdict:
                    print(f"quorum {'seen' if ok else 'LOST'}: {1 + watch.seen()} of {len(args.peers) + 1} votes "
                          f"seen within {args.window:g} s (a majority is {args.need})", flush=True)
                write(args.file, ok)
                verdict, written = ok, clock()
    finally:
        for s, _, _ in watch.pending.values():
            s.close()


def main(argv: Sequence[str]) -> int:
    try:
        args = parse(argv)
    except ValueError as exc:
        print(f"vip-quorum: {exc}", file=sys.stderr)
        return 2
    os.umask(0o022)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
