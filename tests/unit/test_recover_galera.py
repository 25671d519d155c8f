"""The Galera recovery plan: which node bootstraps, and when hastack refuses to choose."""

from __future__ import annotations

from hastack.facts.galera import NIL_UUID
from hastack.recover.galera import Position, plan

U = "fe8bc110-e9bf-11f1-8c99-5b3c36ad21e6"


def stopped(node: str, seqno: int | None, safe: bool = False, uuid: str = U) -> Position:
    return Position(node, True, False, False, uuid, seqno, safe, "grastate.dat")


def test_clean_stop_picks_the_last_one_out() -> None:
    p = plan([stopped("ctl-1", 16), stopped("ctl-2", 19), stopped("ctl-3", 22, safe=True)])
    assert (p.action, p.bootstrap) == ("bootstrap", "ctl-3")
    assert [(j.node, j.missing) for j in p.joiners] == [("ctl-1", 6), ("ctl-2", 3)]


def test_most_advanced_wins_even_when_not_first_or_safe() -> None:
    p = plan([stopped("ctl-1", 10, safe=True), stopped("ctl-2", 12), stopped("ctl-3", 11)])
    assert p.bootstrap == "ctl-2"


def test_ties_prefer_safe_to_bootstrap_then_topology_order() -> None:
    assert plan([stopped("ctl-1", 9), stopped("ctl-2", 9, safe=True), stopped("ctl-3", 9)]).bootstrap == "ctl-2"
    p = plan([stopped("ctl-1", 9), stopped("ctl-2", 9), stopped("ctl-3", 9)])
    assert p.bootstrap == "ctl-1" and all(j.transfer == "none" for j in p.joiners)


def test_crash_positions_from_wsrep_recover_count_the_same() -> None:
    crashed = [Position("ctl-1", seqno=40, uuid=U, source="mariadbd --wsrep-recover"),
               Position("ctl-2", seqno=42, uuid=U, source="mariadbd --wsrep-recover"),
               Position("ctl-3", seqno=41, uuid=U, source="mariadbd --wsrep-recover")]
    assert plan(crashed).bootstrap == "ctl-2"


def test_refuses_while_a_primary_component_exists() -> None:
    alive = Position("ctl-2", True, True, True, U, 50, False, "running")
    p = plan([stopped("ctl-1", 49), alive, stopped("ctl-3", 48)])
    assert p.action == "nothing" and p.bootstrap is None
    assert [j.node for j in p.joiners] == ["ctl-1", "ctl-3"]


def test_refuses_when_a_node_does_not_answer_unless_named_lost() -> None:
    nodes = [stopped("ctl-1", 5), Position("ctl-2", reachable=False, error="timeout"), stopped("ctl-3", 7)]
    p = plan(nodes)
    assert p.action == "refuse" and "--lost ctl-2" in p.reason
    p = plan(nodes, lost=["ctl-2"])
    assert (p.action, p.bootstrap) == ("bootstrap", "ctl-3")
    assert [j.node for j in p.joiners] == ["ctl-1"]


def test_refuses_unknown_positions_and_mixed_clusters() -> None:
    assert plan([stopped("ctl-1", None), stopped("ctl-2", 3)]).action == "refuse"
    other = "11111111-2222-3333-4444-555555555555"
    assert plan([stopped("ctl-1", 3), stopped("ctl-2", 4, uuid=other)]).action == "refuse"


def test_a_never_clustered_set_is_left_to_deploy() -> None:
    p = plan([stopped("ctl-1", -1, uuid=NIL_UUID), stopped("ctl-2", -1, uuid=NIL_UUID)])
    assert p.action == "refuse" and "hastack deploy" in p.reason


def test_never_two_bootstraps() -> None:
    for order in ([3, 3, 3], [1, 2, 3], [3, 2, 1]):
        p = plan([stopped(f"ctl-{i}", s) for i, s in enumerate(order, 1)])
        assert p.bootstrap is not None and p.bootstrap not in [j.node for j in p.joiners]
        assert len(p.joiners) == 2


def test_render_names_the_choice_and_every_node() -> None:
    text = "\n".join(plan([stopped("ctl-1", 1), stopped("ctl-2", 2, safe=True)]).render())
    assert "ctl-2 has the highest committed position" in text and "ctl-1: stopped, seqno 1" in text
