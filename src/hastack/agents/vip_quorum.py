#!/usr/bin/python3
"""hastack VIP quorum check, run by keepalived on each controller as a track script (vrrp_script quorum).

VRRP has no quorum. A master cut off from the other controllers hears no adverts, which is what a
master normally hears anyway, so it keeps the VIP while the others elect a new master: the VIP is
on two nodes for as long as the partition lasts (the campaign's `partition-vip-controller` nemesis
measured 198 split-brain samples over a 20 s hold). This check puts such a node in FAULT.

Rule: the node may hold the VIP while it sees a majority of the cluster's votes, counting itself.
The votes are Galera's (every controller, and garbd on a non-controller arbitrator): the VIP then
stays on the side that can still commit writes. A peer counts as seen when a TCP connection to its
Galera group port is accepted *or refused* within TIMEOUT_S: a refusal (RST) comes from the peer's
kernel, so the path to it works even when mariadbd or garbd is down there. Silence (a cut, a dead or powered-off
node) counts as unseen. Every peer is tried at once, so one run takes at most TIMEOUT_S.

The false alarm this avoids by construction: a loaded peer. A SYN is answered by the peer's kernel,
not by a process that may be starved of CPU; keepalived's `fall` (2 by default) absorbs one slow run
of this script on a loaded node.

Usage (from keepalived.conf, arguments rendered from the topology: addresses and ports only):
    vip-quorum NEED HOST:PORT [HOST:PORT ...]
exit 0: this node and at least NEED-1 peers seen; 1: fewer; 2: bad arguments.

This file is copied to the node and run by the node's own Python 3 (standard library only).
"""

from __future__ import annotations

import errno
import ipaddress
import select
import socket
import sys
import time
from collections.abc import Callable, Sequence

TIMEOUT_S = 0.5
SEEN_ERRORS = frozenset({0, errno.ECONNREFUSED})
"""connect()'s outcome when the peer's kernel answered: accepted, or refused (RST)."""


def parse(argv: Sequence[str]) -> tuple[int, list[tuple[str, int]]]:
    """NEED and the peers; ValueError on anything that is not a count and IPv4/IPv6 address:port."""
    if len(argv) < 1:
        raise ValueError("usage: vip-quorum NEED HOST:PORT ...")
    need = int(argv[0])
    if need < 1:
        raise ValueError(f"NEED must be at least 1, not {need}")
    peers = []
    for item in argv[1:]:
        host, sep, port = item.rpartition(":")
        if not sep:
            raise ValueError(f"not HOST:PORT: {item!r}")
        address = ipaddress.ip_address(host.strip("[]"))
        number = int(port)
        if not 0 < number < 65536:
            raise ValueError(f"bad port in {item!r}")
        peers.append((str(address), number))
    return need, peers


def seen_peers(peers: Sequence[tuple[str, int]], timeout: float = TIMEOUT_S,
               clock: Callable[[], float] = time.monotonic) -> int:
    """How many peers' kernels answered a connection attempt within `timeout`, all tried at once."""
    pending: dict[int, socket.socket] = {}
    seen = 0
    try:
        for host, port in peers:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setblocking(False)
            code = s.connect_ex((host, port))
            if code in SEEN_ERRORS:
                seen += 1
                s.close()
            elif code in (errno.EINPROGRESS, errno.EWOULDBLOCK):
                pending[s.fileno()] = s
            else:  # unreachable at once (no route): unseen
                s.close()
        deadline = clock() + timeout
        poller = select.poll()
        for fd in pending:
            poller.register(fd, select.POLLOUT)
        while pending:
            left = deadline - clock()
            if left <= 0:
                break
            for fd, _ in poller.poll(left * 1000):
                s = pending.pop(fd)
                poller.unregister(fd)
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) in SEEN_ERRORS:
                    seen += 1
                s.close()
    finally:
        for s in pending.values():
            s.close()
    return seen


def has_quorum(need: int, seen: int) -> bool:
    """This node is one vote; `need` is the majority of all votes."""
    return 1 + seen >= need


def main(argv: Sequence[str]) -> int:
    try:
        need, peers = parse(argv)
    except ValueError as exc:
        print(f"vip-quorum: {exc}", file=sys.stderr)
        return 2
    return 0 if has_quorum(need, seen_peers(peers)) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
