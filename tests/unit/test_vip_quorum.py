"""The VIP quorum check (agents/vip_quorum.py) on real sockets: a listening peer and a refusing one
are seen, a silent one is not, and the verdict counts this node as one vote."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from hastack.agents import vip_quorum as q


@pytest.fixture
def listening() -> Iterator[int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: the kernel refuses a connection with RST."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def silent() -> Iterator[tuple[str, int]]:
    """A peer that never answers a SYN: a listener whose backlog is already full of unaccepted
    connections makes the kernel drop further SYNs (Linux), like a cut link does."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(0)
    port = s.getsockname()[1]
    fillers = []
    for _ in range(8):  # fill the accept queue; later connects stay in SYN_SENT
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    time.sleep(0.05)
    yield ("127.0.0.1", port)
    for c in fillers:
        c.close()
    s.close()


def test_listening_and_refusing_peers_are_seen(listening: int, closed_port: int) -> None:
    assert q.seen_peers([("127.0.0.1", listening), ("127.0.0.1", closed_port)], timeout=1.0) == 2


def test_a_silent_peer_is_not_seen_and_the_wait_is_bounded(silent: tuple[str, int], listening: int) -> None:
    t0 = time.monotonic()
    assert q.seen_peers([silent, ("127.0.0.1", listening)], timeout=0.3) == 1
    assert time.monotonic() - t0 < 1.0


def test_no_peers_is_quorum_only_for_a_single_vote() -> None:
    assert q.seen_peers([]) == 0
    assert q.has_quorum(1, 0)
    assert not q.has_quorum(2, 0)
    assert q.has_quorum(2, 1) and not q.has_quorum(3, 1) and q.has_quorum(3, 2)


def test_main_exit_codes(listening: int, silent: tuple[str, int]) -> None:
    assert q.main(["2", f"127.0.0.1:{listening}"]) == 0
    assert q.main(["2", f"{silent[0]}:{silent[1]}"]) == 1


@pytest.mark.parametrize("argv", [[], ["x"], ["0"], ["2", "10.0.0.1"], ["2", "host:22"], ["2", "10.0.0.1:0"],
                                  ["2", "10.0.0.1:70000"], ["2", "10.0.0.1:22;reboot"]])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert q.main(argv) == 2
    assert "vip-quorum:" in capsys.readouterr().err


def test_ipv6_peers_parse() -> None:
    assert q.parse(["2", "[::1]:22", "10.0.0.2:2222"]) == (2, [("::1", 22), ("10.0.0.2", 2222)])
