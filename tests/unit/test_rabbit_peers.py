"""The broker peer watch (agents/rabbit_peers.py): a peer whose kernel answers (accepts or refuses)
is never dropped, a silent one is dropped once after DEAD_AFTER, and after the episode the broker on
the minority side of a recorded partition, or with an app stuck stopped, is restarted. The probe is
tried on real loopback sockets; the rule with a clock and commands the test holds."""

from __future__ import annotations

import pytest

from hastack.agents import rabbit_peers as rp


def test_a_peer_that_accepts_or_refuses_answers_and_a_silent_one_does_not(
        listening: int, closed_port: int, silent: tuple[str, int]) -> None:
    assert rp.answers("127.0.0.1", listening, 0.5)
    assert rp.answers("127.0.0.1", closed_port, 0.5)  # RST from the kernel: the host is up
    assert not rp.answers(*silent, 0.3)


class Broker:
    """rabbitmqctl and systemctl as the watch calls them; answers chosen by the test."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.state = '"true||rabbit@ctl-1,rabbit@net-1"'
        self.fail_drop = False
        self.sockets: dict[str, int] = {}
        """This host's connections to each peer's address, as `ss -K` finds (and ends) them."""
        self.refused = False
        """`ss -K` without the right to destroy: exit 0, a complaint on stderr, nothing ended."""
        self.no_destroy = False
        """A kernel without SOCK_DESTROY: exit 0, nothing said, nothing ended."""

    def __call__(self, argv: list[str], timeout: float) -> tuple[int, str, str]:
        self.calls.append(argv)
        if argv[0] == "ss":
            address = argv[argv.index("dst") + 1]
            listed = "\n".join(f"ESTAB 0 0 10.0.0.9:4{i}000 {address}:5672"
                               for i in range(self.sockets.get(address, 0)))
            if "-K" not in argv:  # the listing after the cut: what is still there
                return 0, listed, ""
            if self.refused:
                return 0, "", "SOCK_DESTROY answers: Operation not permitted"
            if self.no_destroy:
                return 0, "", ""
            self.sockets[address] = 0
            return 0, listed, ""
        if "disconnect_node" in " ".join(argv):
            return (75, "", "Error: unable to perform an operation on node") if self.fail_drop else (0, "[true]", "")
        if argv[:2] == ["systemctl", "restart"]:
            return 0, "", ""
        return 0, self.state, "warning: the VM is running with native name encoding of latin1"

    def drops(self) -> list[str]:
        return [a[-1] for a in self.calls if "disconnect_node" in a[-1]]

    def restarts(self) -> int:
        return sum(a[:2] == ["systemctl", "restart"] for a in self.calls)


def watch(up: dict[str, bool],
          options: tuple[str, ...] = ("--drop",)) -> tuple[rp.Watch, list[float], Broker, list[str]]:
    clock, broker, said = [0.0], Broker(), []
    args = rp.parse([*options, "3", "1", "4369", "rabbit@ctl-1=10.0.0.1", "rabbit@net-1=10.0.0.3"])
    addresses = {v: k for k, v in args.peers.items()}
    w = rp.Watch(args, clock=lambda: clock[0], probe=lambda a: up[addresses[a]], run=broker, say=said.append)
    return w, clock, broker, said


def run_for(w: rp.Watch, clock: list[float], seconds: float) -> None:
    end = clock[0] + seconds
    while clock[0] < end:
        clock[0] += 1.0
        w.step()


def test_a_peer_whose_host_answers_is_never_dropped_however_long() -> None:
    w, clock, broker, _ = watch({"rabbit@ctl-1": True, "rabbit@net-1": True})
    run_for(w, clock, 600)
    assert broker.calls == []


def test_a_silent_peer_is_dropped_once_after_dead_after_and_looked_after_when_it_answers_again() -> None:
    up = {"rabbit@ctl-1": True, "rabbit@net-1": True}
    w, clock, broker, said = watch(up)
    run_for(w, clock, 5)
    up["rabbit@ctl-1"] = False
    run_for(w, clock, 2)
    assert broker.drops() == []  # 2 s of silence: not yet
    run_for(w, clock, 1)
    assert broker.drops() == ["[erlang:disconnect_node(N) || N <- ['rabbit@ctl-1']]."]
    assert "dropped rabbit@ctl-1 (10.0.0.1: no answer for 3.0 s)" in said[-1]
    run_for(w, clock, 300)  # still silent: dropped once, no broker look while the episode lasts
    assert len(broker.calls) == 1
    up["rabbit@ctl-1"] = True
    run_for(w, clock, rp.AFTER_S + 30)
    looks = [a for a in broker.calls if a[-1] == rp.STATE_EVAL]
    assert len(looks) == 11  # every 10 s from 10 s after the answer, within the 120-s window, then no more
    assert broker.restarts() == 0  # running, no partition: nothing to do


def test_a_failed_drop_is_tried_again_later_and_later() -> None:
    up = {"rabbit@ctl-1": False, "rabbit@net-1": True}
    w, clock, broker, said = watch(up)
    broker.fail_drop = True
    run_for(w, clock, 3)
    assert len(broker.drops()) == 1 and "could not drop" in said[-1] and "unable to perform" in said[-1]
    run_for(w, clock, 3 + 6 + 12 + 24 + 48 + 60 + 60)  # after 3, 6, 12, ... s, at most every 60 s
    assert len(broker.drops()) == 8
    broker.fail_drop = False
    run_for(w, clock, 60)
    assert len(broker.drops()) == 9 and said[-1].startswith("dropped")


def test_the_minority_side_of_a_recorded_partition_restarts_its_broker() -> None:
    up = {"rabbit@ctl-1": False, "rabbit@net-1": False}  # this broker was cut off from both
    w, clock, broker, said = watch(up)
    run_for(w, clock, 5)
    assert len(broker.drops()) == 1 and "rabbit@ctl-1" in broker.drops()[0] and "rabbit@net-1" in broker.drops()[0]
    broker.state = '"true|rabbit@ctl-1,rabbit@net-1|rabbit@ctl-1,rabbit@net-1"'
    up.update({"rabbit@ctl-1": True, "rabbit@net-1": True})
    run_for(w, clock, rp.CHECK_EVERY_S + 1)
    assert broker.restarts() == 1
    assert "minority side (1 of 3 brokers)" in " ".join(said)


def test_the_majority_side_never_restarts_itself() -> None:
    up = {"rabbit@ctl-1": True, "rabbit@net-1": False}
    w, clock, broker, _ = watch(up)
    run_for(w, clock, 5)
    broker.state = '"true|rabbit@net-1|rabbit@ctl-1,rabbit@net-1"'
    up["rabbit@net-1"] = True
    run_for(w, clock, rp.AFTER_S)
    assert broker.restarts() == 0


def test_an_app_stopped_while_connected_to_the_majority_is_restarted_after_stuck_s() -> None:
    up = {"rabbit@ctl-1": False, "rabbit@net-1": True}
    w, clock, broker, _ = watch(up)
    run_for(w, clock, 5)
    up["rabbit@ctl-1"] = True
    broker.state = '"false||rabbit@ctl-1,rabbit@net-1"'  # the node monitor is down with the app: no record
    run_for(w, clock, rp.STUCK_S)
    assert broker.restarts() == 0  # a pause ends within seconds of seeing the majority
    run_for(w, clock, 2 * rp.CHECK_EVERY_S)
    assert broker.restarts() == 1


def test_a_paused_broker_whose_peers_hosts_answer_but_brokers_do_not_is_left_alone() -> None:
    """After a wider outage the peers' kernels answer long before their brokers run: this broker,
    paused for want of a majority of Erlang nodes, is right to wait."""
    up = {"rabbit@ctl-1": False, "rabbit@net-1": False}
    w, clock, broker, _ = watch(up)
    run_for(w, clock, 5)
    up.update({"rabbit@ctl-1": True, "rabbit@net-1": True})
    broker.state = '"false||"'
    run_for(w, clock, rp.AFTER_S)
    assert broker.restarts() == 0


def test_a_stopped_app_seen_in_one_window_does_not_count_in_the_next() -> None:
    up = {"rabbit@ctl-1": True, "rabbit@net-1": True}
    w, clock, broker, _ = watch(up)
    w.stopped_since = clock[0] - 1000  # what a window that closed long ago left behind
    up["rabbit@ctl-1"] = False
    run_for(w, clock, 5)
    up["rabbit@ctl-1"] = True
    broker.state = '"false||rabbit@ctl-1,rabbit@net-1"'
    run_for(w, clock, rp.CHECK_EVERY_S + 1)  # the new window's first look: stopped since now, not since then
    assert len([a for a in broker.calls if a[-1] == rp.STATE_EVAL]) == 1 and broker.restarts() == 0


def test_a_command_is_ended_when_it_outlives_its_timeout_and_stderr_is_kept_apart() -> None:
    assert rp.run_command(["sh", "-c", "echo out; echo err >&2"], 5) == (0, "out", "err")
    code, _, err = rp.run_command(["sleep", "30"], 0.3)
    assert code == 124 and "no answer within 0.3 s" in err


def cuts(broker: Broker) -> list[list[str]]:
    return [a for a in broker.calls if a[:2] == ["ss", "-K"]]


def test_a_host_of_clients_cuts_its_connections_to_a_silent_broker_every_round_until_it_answers() -> None:
    """`--cut` without `--drop` (a network or compute node): no broker to ask; this host's
    connections to the silent broker's AMQP port are ended after DEAD_AFTER, and again every round
    (a client's new attempt to connect there fails at once too), never while its kernel answers."""
    up = {"rabbit@ctl-1": True, "rabbit@net-1": True}
    w, clock, broker, said = watch(up, ("--cut", "5672"))
    broker.sockets["10.0.0.1"] = 3
    run_for(w, clock, 600)
    assert broker.calls == []  # answering: nothing cut, however long
    up["rabbit@ctl-1"] = False
    run_for(w, clock, 2)
    assert cuts(broker) == []
    run_for(w, clock, 1)
    assert cuts(broker) == [["ss", "-K", "-H", "-t", "-n", "dst", "10.0.0.1", "dport", "=", ":5672"]]
    assert said[-2] == "rabbit@ctl-1 (10.0.0.1) silent for 3.0 s"
    assert said[-1] == "cut 3 connections to rabbit@ctl-1's AMQP port (10.0.0.1:5672: no answer for 3.0 s)"
    broker.sockets["10.0.0.1"] = 1  # a client tried it again
    run_for(w, clock, 4)
    assert len(cuts(broker)) == 5 and said[-1].startswith("cut 1 connection to rabbit@ctl-1's")
    assert not any("disconnect_node" in " ".join(a) for a in broker.calls)
    up["rabbit@ctl-1"] = True
    run_for(w, clock, 1)
    assert said[-1] == "rabbit@ctl-1 answers again"
    run_for(w, clock, 60)
    assert len(cuts(broker)) == 5 and broker.restarts() == 0  # no look at a broker this host does not run


def test_a_broker_drops_a_silent_peer_and_cuts_its_own_clients_connections_to_it() -> None:
    up = {"rabbit@ctl-1": True, "rabbit@net-1": False}
    w, clock, broker, said = watch(up, ("--drop", "--cut", "5672"))
    broker.sockets["10.0.0.3"] = 2
    run_for(w, clock, 3)
    assert broker.drops() == ["[erlang:disconnect_node(N) || N <- ['rabbit@net-1']]."]
    assert cuts(broker)[0][6] == "10.0.0.3"
    assert "cut 2 connections to rabbit@net-1's" in said[-2] and said[-1].startswith("dropped rabbit@net-1")
    ss_first = [a[0] for a in broker.calls]
    assert ss_first.index("ss") < ss_first.index("rabbitmqctl")  # the clients do not wait for the drop
    assert not any("silent for" in line for line in said)  # the drop's line says it


@pytest.mark.parametrize(("kernel", "why"), [
    ("refused", "ss exit 0: SOCK_DESTROY answers: Operation not permitted"),
    ("no_destroy", "2 left established (the kernel ended none: CONFIG_INET_DIAG_DESTROY?)"),
])
def test_a_cut_the_kernel_did_not_make_is_said_once_and_tried_every_round(kernel: str, why: str) -> None:
    """`ss -K` exits 0 whether or not the kernel ended anything: without root it complains on
    stderr, without SOCK_DESTROY it says nothing; the listing after it tells."""
    up = {"rabbit@ctl-1": False, "rabbit@net-1": True}
    w, clock, broker, said = watch(up, ("--cut", "5672"))
    setattr(broker, kernel, True)
    broker.sockets["10.0.0.1"] = 2
    run_for(w, clock, 10)
    assert len(cuts(broker)) == 8
    assert [line for line in said if "cut" in line] == [
        f"could not cut connections to rabbit@ctl-1 (10.0.0.1:5672): {why}"]


def test_a_missing_ss_is_a_failed_cut_not_a_crash() -> None:
    def no_ss(argv: list[str], timeout: float) -> tuple[int, str, str]:
        raise FileNotFoundError(2, "No such file or directory", "ss")

    said: list[str] = []
    clock = [0.0]
    w = rp.Watch(rp.parse(["--cut", "5672", "3", "1", "4369", "rabbit@ctl-1=10.0.0.1"]), clock=lambda: clock[0],
                 probe=lambda a: False, run=no_ss, say=said.append)
    run_for(w, clock, 5)
    assert said[-1].startswith("could not cut connections to rabbit@ctl-1 (10.0.0.1:5672): ss exit 127: ")


def test_an_ipv6_peer_is_bracketed_in_the_filter() -> None:
    said: list[str] = []
    clock, broker = [0.0], Broker()
    w = rp.Watch(rp.parse(["--cut", "5672", "3", "1", "4369", "rabbit@ctl-1=fd00::5"]), clock=lambda: clock[0],
                 probe=lambda a: False, run=broker, say=said.append)
    run_for(w, clock, 3)
    assert cuts(broker)[0][5:7] == ["dst", "[fd00::5]"]


@pytest.mark.parametrize("argv", [
    [], ["3", "1", "4369", "rabbit@a=10.0.0.1"], ["--cut", "0", "3", "1", "4369", "rabbit@a=10.0.0.1"], ["--cut"],
    ["--kill", "3", "1", "4369", "rabbit@a=10.0.0.1"], ["--drop", "3", "1", "4369"],
    *[["--drop", *bad] for bad in (
        ["0.5", "1", "4369", "rabbit@a=10.0.0.1"], ["3", "5", "4369", "rabbit@a=10.0.0.1"],
        ["3", "1", "0", "rabbit@a=10.0.0.1"], ["3", "1", "4369", "rabbit@a=not-an-ip"],
        ["3", "1", "4369", "rabbit@A';halt().=10.0.0.1"], ["3", "1", "4369", "10.0.0.1"], ["nan", "1", "4369", "x=1"])],
])
def test_bad_arguments_are_refused_with_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert rp.main(argv) == 2
    assert capsys.readouterr().err.startswith("rabbit-peers: ")


@pytest.mark.parametrize(("text", "state"), [
    ('"true||rabbit@ctl-1,rabbit@net-1"', rp.BrokerState(True, (), ("rabbit@ctl-1", "rabbit@net-1"))),
    ('"false|rabbit@ctl-3|"', rp.BrokerState(False, ("rabbit@ctl-3",), ())),
    ('"true|rabbit@ctl-1,rabbit@net-1|rabbit@ctl-1"\n',
     rp.BrokerState(True, ("rabbit@ctl-1", "rabbit@net-1"), ("rabbit@ctl-1",))),
    ("Error: unable to perform an operation on node 'rabbit@ctl-2'", None),
    ('"true rabbit@ctl-3"', None),
    ("", None),
])
def test_the_broker_state_line_is_read(text: str, state: rp.BrokerState | None) -> None:
    assert rp.parse_state(text) == state


def test_minority_counts_this_broker_on_its_own_side() -> None:
    assert rp.minority(3, 2) and not rp.minority(3, 1)
    assert rp.minority(5, 3) and not rp.minority(5, 2)
