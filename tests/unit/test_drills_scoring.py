"""Scoring on synthetic sample streams: every count exact, every edge case named."""

from __future__ import annotations

import math

import pytest

from hastack.drills.samples import REDELIVERED, SKIPPED, STALE, Event, Placement, Recording, Sample
from hastack.drills.scoring import (
    TARGETS,
    Gap,
    Stat,
    Window,
    aggregate,
    bench_rows,
    casts_lost,
    changes,
    failures,
    heal_gap,
    judge,
    longest_gap,
    lost_writes,
    membership_changes,
    merge,
    messages,
    moved,
    ratio,
    score,
    single,
    split_brain,
)


def ok(stream: str, t: float, id: str | None = None) -> Sample:
    return Sample(stream, t, True, 0.0, id)


def bad(stream: str, t: float, id: str | None = None, flag: str | None = None) -> Sample:
    return Sample(stream, t, False, 0.0, id, error="TimeoutError", flag=flag)


# -- gaps --------------------------------------------------------------------------------------------------

def test_gap_runs_from_the_last_success_before_the_fault_to_the_first_after() -> None:
    times = [0, 1, 2, 3, 4, 7.5, 8, 9, 10]
    assert longest_gap(times, [Window(4.9, 10)], 0, 10) == Gap(3.5, 4, 7.5, True)


def test_a_long_interval_outside_the_window_is_not_the_gap() -> None:
    times = [0, 3, 4, 5, 5.5, 6]
    assert longest_gap(times, [Window(4.5, 6)], 0, 6) == Gap(1, 4, 5, True)


def test_no_success_at_all_is_one_gap_over_the_whole_run_not_recovered() -> None:
    assert longest_gap([], [Window(2, 3)], 0, 10) == Gap(10, 0, 10, False)


def test_fault_at_the_start_measures_from_the_start_of_the_run() -> None:
    assert longest_gap([3, 4, 5], [Window(0, 5)], 0, 5) == Gap(3, 0, 3, True)


def test_never_recovering_stream_runs_to_the_end_and_says_so() -> None:
    assert longest_gap([1, 2], [Window(2.5, 10)], 0, 10) == Gap(8, 2, 10, False)


def test_a_success_exactly_at_the_fault_counts_as_before_it() -> None:
    # (1, 2) ends at the fault instant: it does not overlap; (2, 5) does.
    assert longest_gap([1, 2, 5, 5.5], [Window(2, 6)], 0, 6) == Gap(3, 2, 5, True)
    # Without the success at 2 the interval starts at 1.
    assert longest_gap([1, 5, 5.5], [Window(2, 6)], 0, 6) == Gap(4, 1, 5, True)


def test_overlapping_windows_are_merged_and_disjoint_ones_both_count() -> None:
    assert merge([Window(3, 6), Window(2, 4), Window(6, 7), Window(9, 10)]) == [Window(2, 7), Window(9, 10)]
    times = [0, 1, 5, 6, 8.5, 9, 9.5, 12]
    # (1, 5) overlaps [1.5, 2]; (9.5, 12) overlaps [10, 11]; (6, 8.5) overlaps neither.
    assert longest_gap(times, [Window(1.5, 2), Window(10, 11)], 0, 12) == Gap(4, 1, 5, True)
    assert longest_gap(times, [Window(7, 8)], 0, 12) == Gap(2.5, 6, 8.5, True)


def test_an_interval_spanning_a_whole_window_counts() -> None:
    assert longest_gap([0, 1, 9, 10], [Window(4, 5)], 0, 10) == Gap(8, 1, 9, True)


def test_ties_go_to_the_earliest_gap_and_successes_outside_the_run_are_ignored() -> None:
    assert longest_gap([-5, 1, 3, 5, 7, 50], [Window(0, 9)], 0, 9) == Gap(2, 1, 3, True)


def test_no_window_means_no_gap_and_inverted_spans_are_refused() -> None:
    assert longest_gap([1, 2], [], 0, 10) is None
    with pytest.raises(ValueError):
        Window(5, 4)
    with pytest.raises(ValueError):
        longest_gap([1], [Window(0, 1)], 10, 0)


# -- failures, writes, messages ----------------------------------------------------------------------------

def test_failures_and_stalls_are_counted_apart_and_per_window() -> None:
    samples = [bad("db", 1), bad("db", 2, flag=SKIPPED), bad("db", 6), ok("db", 3), bad("vip", 2)]
    assert failures(samples, "db").failed == 2
    assert failures(samples, "db").skipped == 1
    assert failures(samples, "db", [Window(0, 5)]).failed == 1
    assert failures(samples, "keystone").failed == 0


def test_lost_writes_are_acked_ids_missing_on_any_readable_node() -> None:
    samples = [ok("db", 1, "a"), ok("db", 2, "b"), ok("db", 3, "c"), bad("db", 4, "d"), bad("db", 5, "e")]
    check = lost_writes(samples, {"ctl-1": {"a", "b", "c", "d"}, "ctl-2": {"a", "b"}, "ctl-3": None})
    assert check.acked == 3
    assert check.lost == 1
    assert check.missing == {"ctl-1": 0, "ctl-2": 1}
    assert check.unreadable == ("ctl-3",)
    assert check.in_doubt_landed == 1  # d failed for the client but committed


def test_a_write_missing_on_two_nodes_is_one_lost_write() -> None:
    samples = [ok("db", 1, "a"), ok("db", 2, "b")]
    check = lost_writes(samples, {"x": {"a"}, "y": {"a"}, "z": {"a", "b"}})
    assert (check.lost, check.missing) == (1, {"x": 1, "y": 1, "z": 0})


def test_no_readable_node_means_unknown_not_zero() -> None:
    check = lost_writes([ok("db", 1, "a")], {"ctl-1": None})
    assert check.lost is None
    assert lost_writes([ok("db", 1, "a")], {}).lost is None


def test_messages_lost_duplicated_stale_and_in_doubt() -> None:
    samples = [
        ok("publish", 1, "r-m1"), ok("publish", 2, "r-m2"), bad("publish", 3, "r-m3"), ok("publish", 4, "r-m4"),
        ok("consume", 1.1, "r-m1"), Sample("consume", 5, True, 0, "r-m1", flag=REDELIVERED),
        Sample("consume", 5.1, True, 0, "r-m1", flag=REDELIVERED), ok("consume", 3.1, "r-m3"),
        ok("consume", 4.1, "r-m4"), Sample("consume", 0.5, True, 0, "old-m7", flag=STALE),
        ok("consume", 0.6, "never-published"), bad("consume", 2.5),
    ]
    m = messages(samples)
    assert m.confirmed == 3
    assert m.consumed == 3  # m1, m3, m4
    assert m.lost == 1  # m2
    assert m.duplicates == 2  # m1 delivered three times
    assert m.stale == 2
    assert m.unconfirmed_consumed == 1  # m3


# -- placements --------------------------------------------------------------------------------------------

def test_split_brain_counts_samples_exactly_and_per_kind() -> None:
    ps = [Placement(0, ("a",), ("n1",)), Placement(1, ("a", "b"), ("n1",)),
          Placement(2, ("a", "b"), ("n1", "n2")), Placement(3, ("b",), ("n1", "n2")),
          Placement(4, ("a", "a"), ("n2",)), Placement(5, error="timeout"), Placement(6, (), ())]
    sb = split_brain(ps)
    assert (sb.vip, sb.agents, sb.total, sb.samples) == (2, 2, 4, 6)


def test_a_router_or_dhcp_server_on_two_network_nodes_is_split_brain() -> None:
    ps = [Placement(0, ("a",), ("n1",), routers=("n1",), dhcp=("n1",)),
          Placement(1, ("a",), ("n2",), routers=("n1", "n2"), dhcp=("n2",)),
          Placement(2, ("a",), ("n2",), routers=("n2",), dhcp=("n1", "n2"))]
    sb = split_brain(ps)
    assert (sb.vip, sb.agents, sb.routers, sb.dhcp, sb.total) == (0, 0, 1, 1, 2)


def test_the_data_plane_moves_after_the_agents() -> None:
    """The agents alive on n2 first, the router gateway up there later, DHCP last: three figures."""
    ps = [Placement(4.0, agents=("n1",), routers=("n1",), dhcp=("n1",)),
          Placement(6.0, agents=("n2",)), Placement(9.0, agents=("n2",), routers=("n2",)),
          Placement(11.5, agents=("n2",), routers=("n2",), dhcp=("n2",))]
    rec = Recording(0.0, (), tuple(ps), (Event(0, "start"), Event(5.0, "fault"), Event(12, "stop")))
    f = score(rec).figures()
    assert (f["agents_moved_s"], f["routers_moved_s"], f["dhcp_moved_s"]) == (1.0, 4.0, 6.5)
    assert f["split_brain_samples"] == 0
    back = Recording.from_json(rec.to_json())
    assert back.placements == rec.placements  # the report's JSON keeps the data plane


def test_agents_move_time_from_the_fault_to_the_other_node() -> None:
    ps = [Placement(4.0, agents=("n1",)), Placement(5.0, agents=("n1",)), Placement(5.5, agents=()),
          Placement(6.0, error="x"), Placement(7.25, agents=("n2",)), Placement(8, agents=("n2",))]
    m = moved(ps, 5.0, "agents")
    assert (m.before, m.after, m.seconds) == ("n1", "n2", 2.25)


def test_no_move_and_unknown_holder() -> None:
    ps = [Placement(1, vip=("a",)), Placement(3, vip=("a",))]
    assert moved(ps, 2, "vip").seconds is None
    assert moved(ps, 2, "vip").before == "a"
    split_before = [Placement(1, vip=("a", "b")), Placement(3, vip=("b",))]
    assert moved(split_before, 2, "vip").before is None
    # Both nodes at once after the fault is not "moved": the old holder still has it.
    both = [Placement(1, vip=("a",)), Placement(3, vip=("a", "b")), Placement(4, vip=("b",))]
    assert moved(both, 2, "vip").seconds == 2


# -- a whole run -------------------------------------------------------------------------------------------

def small_run() -> Recording:
    samples = [ok("vip", t / 10) for t in range(0, 101) if not 50 <= t < 53]
    samples += [ok("db", float(t), f"r-d{t}") for t in range(0, 11) if t not in (6, 7)]
    samples += [bad("db", 6.5, "r-d6")]
    samples += [ok("publish", float(t), f"r-m{t}") for t in range(11)]
    samples += [ok("consume", t + 0.1, f"r-m{t}") for t in range(11) if t != 4]
    placements = [Placement(t / 2, ("ctl-1",) if t < 11 else ("ctl-2",), ("net-1",), "ctl-1") for t in range(21)]
    events = [Event(0, "start"), Event(5.0, "fault", "power off ctl-1"), Event(7, "heal"),
              Event(8, "status", ok=False), Event(9, "status", ok=True), Event(9, "healthy"), Event(10, "stop")]
    acked = [f"r-d{t}" for t in range(11) if t not in (6, 7)]
    present = {"ctl-1": acked, "ctl-2": [i for i in acked if i != "r-d9"], "ctl-3": None}
    return Recording(0.0, tuple(sorted(samples, key=lambda s: s.t)), tuple(placements), tuple(events),
                     {"db_present": present})


def test_score_of_a_whole_run() -> None:
    f = score(small_run()).figures()
    assert f["vip_gap_s"] == pytest.approx(0.4)  # 4.9 -> 5.3
    assert f["db_gap_s"] == 3  # 5 -> 8
    assert f["db_failed"] == 1
    assert f["db_acked"] == 9
    assert f["db_lost"] == 1
    assert f["publish_gap_s"] == 1
    assert f["messages_confirmed"] == 11
    assert f["messages_lost"] == 1
    assert f["messages_duplicated"] == 0
    assert f["keystone_gap_s"] is None  # no keystone workload in this run
    assert f["split_brain_samples"] == 0
    assert f["vip_moved_s"] == 0.5
    assert f["agents_moved_s"] is None
    assert f["heal_to_healthy_s"] == 2


def test_the_heal_is_scored_apart_from_the_fault() -> None:
    s = score(small_run())
    f = s.figures()
    assert s.window == Window(5.0, 7)  # the fault's window ends at the heal
    assert f["db_gap_s"] == 3  # 5 -> 8: open at the heal, so it is the fault's gap
    assert f["db_heal_gap_s"] == 1  # 8 -> 9 -> 10
    assert f["vip_heal_gap_s"] == pytest.approx(0.1)
    assert f["keystone_heal_gap_s"] is None


def test_a_stall_that_begins_after_the_heal_is_the_heal_gap_not_the_faults() -> None:
    vip = [ok("vip", t / 10) for t in range(0, 201) if not 50 <= t < 55 and not 121 <= t < 140]
    events = (Event(0, "start"), Event(5.0, "fault"), Event(10, "heal"), Event(20, "stop"))
    f = score(Recording(0.0, tuple(vip), (), events)).figures()
    assert f["vip_gap_s"] == pytest.approx(0.6)  # 4.9 -> 5.5
    assert f["vip_heal_gap_s"] == pytest.approx(2.0)  # 12.0 -> 14.0, the node coming back


def test_heal_gap_edges() -> None:
    assert heal_gap([1, 2, 3], 5, 10) is None  # nothing after the heal: still the fault's gap
    assert heal_gap([1, 6, 7], 5, 10) == Gap(3, 7, 10, False)  # stopped again and never came back
    assert heal_gap([6, 9, 9.5], 5, 10) == Gap(3, 6, 9, True)


def test_heal_targets_do_not_apply_where_nothing_heals() -> None:
    v = {x.target.figure: x for x in judge(single({"vip_heal_gap_s": None}), ("self-healed",))}
    assert v["vip_heal_gap_s"].passed is None
    v = {x.target.figure: x for x in judge(single({"vip_heal_gap_s": 0.5}), ("vip",))}
    assert v["vip_heal_gap_s"].passed is False


def test_a_run_without_a_fault_is_scored_over_its_whole_length() -> None:
    rec = Recording(0.0, (ok("vip", 1), ok("vip", 4), ok("vip", 5)), (), (Event(0, "start"), Event(6, "stop")))
    s = score(rec)
    assert s.window is None
    assert s.gaps["vip"] == Gap(3, 1, 4, True)
    assert s.heal_to_healthy_s is None


# -- repeats, targets, bench -------------------------------------------------------------------------------

def test_aggregate_gives_min_median_max_and_counts_missing_values() -> None:
    stats = aggregate([{"a": 1, "b": None}, {"a": 3, "b": 2.5}, {"a": 2, "b": None}, {"a": 10}])
    assert stats["a"] == Stat(4, 4, 1, 2.5, 10)
    assert stats["b"] == Stat(1, 4, 2.5, 2.5, 2.5)


def test_targets_are_judged_on_the_worst_run() -> None:
    stats = aggregate([{"vip_gap_s": 0.1, "db_lost": 0}, {"vip_gap_s": 0.5, "db_lost": 0}])
    verdicts = {v.target.figure: v for v in judge(stats)}
    assert verdicts["vip_gap_s"].passed is False
    assert verdicts["vip_gap_s"].value == 0.5
    assert verdicts["db_lost"].passed is True
    assert verdicts["agents_moved_s"].passed is None  # not a network scenario
    assert verdicts["keystone_gap_s"].passed is False  # not measured is not met


def test_agents_target_applies_to_network_scenarios_and_never_moving_fails_it() -> None:
    v = {x.target.figure: x for x in judge(single({"agents_moved_s": None}), tags=("agents",))}
    assert v["agents_moved_s"].passed is False
    v = {x.target.figure: x for x in judge(single({"agents_moved_s": 4.2}), tags=("agents",))}
    assert v["agents_moved_s"].passed is True


def test_bench_ratio_is_reference_over_hastack() -> None:
    assert ratio(0.3, 3.0) == 10
    assert ratio(0, 0) is None
    assert ratio(0, 1) == math.inf
    assert ratio(None, 1) is None
    rows = {r.target.figure: r for r in bench_rows(single({"vip_gap_s": 0.2}), single({"vip_gap_s": 3.0}))}
    assert rows["vip_gap_s"].ratio == 15
    assert rows["vip_gap_s"].passed is True
    assert rows["db_gap_s"].ratio is None


def test_a_workload_the_topology_does_not_run_is_not_applicable_but_a_slow_one_is_judged() -> None:
    v = {x.target.figure: x for x in judge(single({"networks_gap_s": None}))}
    assert v["networks_gap_s"].passed is None
    v = {x.target.figure: x for x in judge(single({"networks_gap_s": 2.5}))}
    assert v["networks_gap_s"].passed is False and v["networks_gap_s"].value == 2.5


def test_a_soak_counts_moves_and_galera_membership_changes() -> None:
    ps = [Placement(0.0, ("ctl-1",), ("net-1",)), Placement(0.1, ("ctl-1", "ctl-2"), ("net-1",)),
          Placement(0.2, ("ctl-2",), ("net-1",)), Placement(0.3, (), (), error="timeout"),
          Placement(0.4, ("ctl-2",), ("net-2",)), Placement(0.5, ("ctl-1",), ("net-2",))]
    assert changes(ps, "vip") == 2 and changes(ps, "agents") == 1
    steady = [Placement(t / 10, ("ctl-1",), ("net-1",)) for t in range(20)]
    assert changes(steady, "vip") == 0 == changes(steady, "agents")
    rec = Recording(0.0, checks={"galera_conf_id": [7, 9]})
    assert membership_changes(rec) == 2
    assert membership_changes(Recording(0.0, checks={"galera_conf_id": [7, None]})) is None
    v = {x.target.figure: x for x in judge(single({"vip_moves": 0, "galera_membership_changes": 1,
                                                   "agents_moves": 0}), tags=("soak",))}
    assert v["vip_moves"].passed and v["agents_moves"].passed and v["galera_membership_changes"].passed is False
    assert {x.target.figure: x for x in judge(single({"vip_moves": 3}))}["vip_moves"].passed is None


def test_the_soak_counts_are_listed_only_for_the_soak() -> None:
    listed = {t.figure for t in TARGETS if t.listed(("vip", "writer"))}
    assert "vip_moves" not in listed and "agents_moved_s" in listed and "vip_gap_s" in listed
    soak = {t.figure for t in TARGETS if t.listed(("soak",))}
    assert {v.target.figure: v for v in judge(single({"heal_to_healthy_s": None}), ("soak",))}[
        "heal_to_healthy_s"].passed is None  # nothing is healed in a soak
    assert {"vip_moves", "galera_membership_changes", "agents_moves"} <= soak


def test_heal_to_healthy_counts_from_the_heal_or_from_the_fault_when_only_the_product_heals() -> None:
    from hastack.drills.scoring import heal_to_healthy

    healed = Recording(0.0, events=(Event(5, "fault"), Event(25, "heal"), Event(70.5, "healthy")))
    assert heal_to_healthy(healed) == 45.5
    self_healed = Recording(0.0, events=(Event(8.6, "fault"), Event(31.1, "healthy")))
    assert heal_to_healthy(self_healed) == pytest.approx(22.5)
    assert heal_to_healthy(Recording(0.0, events=(Event(0, "start"), Event(600, "healthy")))) is None  # the soak


def test_a_self_healed_scenario_reports_its_fault_to_healthy_without_judging_it() -> None:
    from hastack.drills.scenarios import by_name
    from hastack.drills.scoring import TARGETS

    heal = next(t for t in TARGETS if t.figure == "heal_to_healthy_s")
    assert not heal.applies(by_name("stop-dhcp-agent-active-network").tags) and not heal.applies(("soak",))
    assert heal.applies(by_name("power-off-vip-writer").tags)
    # its hold outlasts Neutron's agent_down_time (75 s): a still-frozen agent is dead in Neutron by then
    assert by_name("stop-dhcp-agent-active-network").hold_s > 75


# -- RPC: per client, and the casts -------------------------------------------------------------------------

def test_an_rpc_gap_is_the_worst_clients_not_hidden_by_the_others() -> None:
    """client-0's broker died at 5: it waits 4 s while client-1 goes on; together they never stop."""
    calls = [Sample("rpc_call", t / 2, True, node="client-1") for t in range(0, 21)]
    calls += [Sample("rpc_call", t / 2, True, node="client-0") for t in range(0, 21) if not 10 < t < 18]
    calls += [Sample("rpc_call", 6.0, False, error="MessagingTimeout")]
    rec = Recording(0.0, tuple(sorted(calls, key=lambda s: s.t)), (),
                    (Event(0, "start"), Event(5.0, "fault"), Event(7.0, "heal"), Event(10, "stop")))
    f = score(rec).figures()
    assert f["rpc_call_gap_s"] == 4.0  # 5.0 -> 9.0 on client-0
    assert f["rpc_call_failed"] == 1
    assert f["rpc_cast_gap_s"] is None and f["rpc_casts_lost"] is None  # no casts in this run


def test_a_confirmed_cast_the_server_never_received_is_lost() -> None:
    samples = (Sample("rpc_cast", 1, True, id="c1", node="client-0"),
               Sample("rpc_cast", 2, True, id="c2", node="client-0"), Sample("rpc_cast", 3, False, id="c3"),
               Sample("rpc_received", 1.1, True, id="c1"), Sample("rpc_received", 3.2, True, id="c3"))
    assert casts_lost(samples) == 1  # c2; c3 failed for the client but arrived: allowed
    v = {x.target.figure: x for x in judge(single({"rpc_casts_lost": 1}))}
    assert v["rpc_casts_lost"].passed is False


def test_rpc_connections_lost_are_counted_for_the_soak() -> None:
    events = (Event(0, "start"), Event(3, "note", "rpc: [x] AMQP server on 10.77.0.11:5672 is unreachable: timed out",
                                       ok=False),
              Event(4, "note", "rpc: [x] Reconnected to AMQP server on 10.77.0.12:5672", ok=True),
              Event(5, "note", "workload db stopped", ok=False), Event(9, "stop"))
    f = score(Recording(0.0, (), (), events)).figures()
    assert f["rpc_reconnects"] == 1
    v = {x.target.figure: x for x in judge(single(f), ("soak",))}
    assert v["rpc_reconnects"].passed is False
    assert {x.target.figure: x for x in judge(single(f), ("vip",))}["rpc_reconnects"].passed is None


def test_a_placement_names_its_holders_by_kind() -> None:
    p = Placement(1, vip=("ctl-1",), agents=("net-1",), writer="ctl-1", routers=("net-1",))
    assert (p.held("vip"), p.held("routers"), p.held("dhcp")) == (("ctl-1",), ("net-1",), ())
    with pytest.raises(KeyError):
        p.held("writer")  # one node or none, not a list: read `writer`
