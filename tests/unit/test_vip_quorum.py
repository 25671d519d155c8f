"""The VIP quorum watch (agents/vip_quorum.py) on real sockets: a listening peer and a refusing one
are seen, a silent one is not once a window has passed, the verdict counts this node as one vote,
and the file keepalived tracks gets it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from hastack.agents import vip_quorum as q


class Clock:
    """The watch's clock, moved by the test: the verdict does not depend on how fast a loaded test
    host runs the loop; only the sockets' answers are real (loopback, within milliseconds)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def watch(need: int, *peers: tuple[str, int]) -> tuple[q.Watch, Clock]:
    clock = Clock()
    return q.Watch(q.Args("/run/x", 0.025, 0.15, need, list(peers)), clock), clock


def probe_at(w: q.Watch, clock: Clock, t: float, answering: int) -> None:
    """One probe round at time t, then wait (real time, up to 5 s) until `answering` peers' answers
    are in; the clock stays at t meanwhile."""
    clock.t = t
    w.probe()
    deadline = time.monotonic() + 5
    while sum(seen == t for seen in w.last_seen.values()) < answering and time.monotonic() < deadline:
        w.collect(0.05)


def test_listening_and_refusing_peers_are_seen(listening: int, closed_port: int) -> None:
    w, clock = watch(3, ("127.0.0.1", listening), ("127.0.0.1", closed_port))
    clock.t = 10.0
    assert w.seen() == 0  # the first window is long over and nothing answered yet
    probe_at(w, clock, 10.0, answering=2)
    clock.t = 10.1
    assert w.seen() == 2 and w.ok()
    clock.t = 10.2  # a window after the answers, with no probe since: gone again
    assert w.seen() == 0 and not w.ok()


def test_a_silent_peer_is_gone_after_one_window_and_its_attempts_are_dropped(
        silent: tuple[str, int], listening: int) -> None:
    w, clock = watch(3, silent, ("127.0.0.1", listening))
    assert w.seen() == 2  # every peer gets the first window
    probe_at(w, clock, 10.0, answering=1)
    clock.t = 10.1
    assert w.seen() == 1 and not w.ok()  # itself and one peer: 2 votes, 3 needed
    assert len(w.pending) == 1  # the silent peer's attempt, still in flight
    clock.t = 10.2
    w.collect(0)
    assert not w.pending  # older than the window: closed


def test_a_majority_with_one_silent_peer_keeps_quorum(silent: tuple[str, int], listening: int) -> None:
    w, clock = watch(2, silent, ("127.0.0.1", listening))
    probe_at(w, clock, 10.0, answering=1)
    clock.t = 10.1
    assert w.seen() == 1 and w.ok()


def test_no_peers_is_quorum_only_for_a_single_vote() -> None:
    assert q.has_quorum(1, 0)
    assert not q.has_quorum(2, 0)
    assert q.has_quorum(2, 1) and not q.has_quorum(3, 1) and q.has_quorum(3, 2)


def test_the_daemon_writes_quorum_when_the_majority_answers(tmp_path: Path, listening: int) -> None:
    out = tmp_path / "verdict"
    args = q.Args(str(out), 0.025, 0.15, 2, [("127.0.0.1", listening)])
    done = threading.Event()
    t = threading.Thread(target=q.run, args=(args,), kwargs={"stopped": done.is_set})
    t.start()
    deadline = time.monotonic() + 5
    while not (out.exists() and out.read_text() == "0\n") and time.monotonic() < deadline:
        time.sleep(0.01)
    done.set()
    t.join(5)
    assert out.read_text() == "0\n" and not t.is_alive()


def test_the_daemon_says_lost_when_the_majority_is_silent(tmp_path: Path, silent: tuple[str, int]) -> None:
    out = tmp_path / "verdict"
    args = q.Args(str(out), 0.025, 0.15, 2, [silent])
    done = threading.Event()
    t0 = time.monotonic()
    t = threading.Thread(target=q.run, args=(args,), kwargs={"stopped": done.is_set})
    t.start()
    while not (out.exists() and out.read_text() == "1\n") and time.monotonic() - t0 < 5:
        time.sleep(0.005)
    lost_after = time.monotonic() - t0
    done.set()
    t.join(5)
    assert out.read_text() == "1\n"
    assert lost_after < 3.0  # bounded: a window and a probe, with room for a loaded test host


@pytest.mark.parametrize("argv", [[], ["/run/x", "0.025", "0.15"], ["/etc/passwd", "0.025", "0.15", "2"],
                                  ["/run/../etc/x", "0.025", "0.15", "2"], ["/run/x", "nan", "0.15", "2"],
                                  ["/run/x", "0.025", "0", "2"], ["/run/x", "0.5", "0.1", "2"],
                                  ["/run/x", "0.025", "0.15", "0"], ["/run/x", "0.025", "0.15", "x"],
                                  ["/run/x", "0.025", "0.15", "2", "10.0.0.1"],
                                  ["/run/x", "0.025", "0.15", "2", "host:22"],
                                  ["/run/x", "0.025", "0.15", "2", "10.0.0.1:0"],
                                  ["/run/x", "0.025", "0.15", "2", "10.0.0.1:70000"],
                                  ["/run/x", "0.025", "0.15", "2", "10.0.0.1:22;reboot"]])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert q.main(argv) == 2
    assert "vip-quorum:" in capsys.readouterr().err


def test_ipv6_peers_parse() -> None:
    args = q.parse(["/run/hastack-vip-quorum", "0.025", "0.15", "2", "[::1]:22", "10.0.0.2:2222"])
    assert args == q.Args("/run/hastack-vip-quorum", 0.025, 0.15, 2, [("::1", 22), ("10.0.0.2", 2222)])
