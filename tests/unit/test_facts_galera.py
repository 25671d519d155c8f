"""Galera: wsrep status and variables, grastate.dat, --wsrep-recover; recorded from real nodes."""

from __future__ import annotations

import pytest
from recordings import answer

from hastack.facts import galera_status, galera_variables, grastate, wsrep_recover
from hastack.facts.galera import (
    MARIADB_QUERY,
    parse_grastate,
    parse_recovered,
    parse_variables,
    sql_accounts,
    sql_rows,
    table_counts,
)
from hastack.transport.base import CommandError, Result

UUID = "fe8bc110-e9bf-11f1-8c99-5b3c36ad21e6"


def test_healthy_three_nodes() -> None:
    s = answer(galera_status(), "mariadb", "wsrep_status-healthy")
    assert s.available and s.primary and s.synced and s.ready and s.connected
    assert (s.cluster_size, s.state, s.cluster_uuid, s.last_committed) == (3, "Synced", UUID, 7)
    assert sorted(s.incoming_addresses) == ["10.77.0.11:0", "10.77.0.12:0", "10.77.0.13:0"]
    assert s.values["wsrep_evs_state"] == "OPERATIONAL" and s.values["wsrep_evs_delayed"] == ""


def test_recorded_in_the_lab() -> None:
    s = answer(galera_status(), "mariadb", "lab-healthy")
    assert s.synced and s.cluster_size == 3


def test_after_a_clean_leave() -> None:
    s = answer(galera_status(), "mariadb", "wsrep_status-two-nodes")
    assert s.synced and s.cluster_size == 2


def test_non_primary_after_losing_the_majority() -> None:
    s = answer(galera_status(), "mariadb", "wsrep_status-non-primary")
    assert s.available and not s.primary and not s.synced
    assert (s.cluster_status, s.state, s.cluster_size) == ("non-Primary", "Initialized", 1)
    assert not s.ready


def test_bootstrapped_again() -> None:
    s = answer(galera_status(), "mariadb", "wsrep_status-bootstrapped")
    assert s.synced and s.cluster_size == 1 and s.cluster_uuid == UUID


def test_server_down_is_an_answer() -> None:
    s = answer(galera_status(), "mariadb", "wsrep_status-server-down")
    assert not s.available and not s.synced
    assert s.error.startswith("ERROR 2002 (HY000): Can't connect to local server through socket")


def test_variables() -> None:
    v = answer(galera_variables(), "mariadb", "wsrep_variables")
    assert v["wsrep_cluster_address"] == "gcomm://10.77.0.11,10.77.0.12,10.77.0.13"
    assert v["wsrep_node_name"] == "ctl-1" and v["wsrep_on"] == "ON"
    assert "evs.suspect_timeout = PT2S" in v["wsrep_provider_options"]


def test_variables_must_answer() -> None:
    fact = galera_variables()
    with pytest.raises(CommandError):
        fact.parse(Result("ctl-1", fact.argv, 1, "", "ERROR 2002 (HY000): Can't connect\n"))


def test_batch_escapes_are_undone() -> None:
    assert parse_variables("a\tx\\ty\\nz\\\\w\nb\t\n") == {"a": "x\ty\nz\\w", "b": ""}


@pytest.mark.parametrize("case, seqno, safe", [
    ("running", -1, False), ("clean-stop", 7, False), ("crashed", -1, False), ("last-out", 10, True),
])
def test_grastate(case: str, seqno: int, safe: bool) -> None:
    g = answer(grastate(), "grastate", case)
    assert g is not None and (g.uuid, g.seqno, g.safe_to_bootstrap, g.version) == (UUID, seqno, safe, "2.1")


def test_grastate_missing() -> None:
    assert answer(grastate(), "grastate", "missing") is None


def test_grastate_needs_uuid_and_seqno() -> None:
    with pytest.raises(KeyError):
        parse_grastate("# GALERA saved state\nversion: 2.1\n")


def test_wsrep_recover() -> None:
    pos = answer(wsrep_recover(), "mariadbd", "wsrep-recover")
    assert (pos.uuid, pos.seqno, pos.gtid, pos.start_position) == (UUID, 8, "", f"{UUID}:8")


def test_wsrep_recover_with_gtid_and_last_line_wins() -> None:
    text = (f"... [Note] WSREP: Recovered position: {UUID}:3\n"
            f"... [Note] WSREP: Recovered position: {UUID}:12,0-1-12\n")
    assert parse_recovered(text).seqno == 12 and parse_recovered(text).gtid == "0-1-12"


def test_wsrep_recover_without_position_is_an_error() -> None:
    with pytest.raises(ValueError, match="no 'WSREP: Recovered position'"):
        parse_recovered("[ERROR] Aborting\n")


def test_sql_accounts_read_from_the_lab() -> None:
    accounts = answer(sql_accounts(), "mariadb", "sql_accounts-deployed")
    assert {"keystone@%", "neutron@%", "hastack_probe@%", "clustercheck@localhost"} <= accounts
    assert all("@" in a for a in accounts)


def test_table_counts_read_from_the_lab() -> None:
    counts = answer(table_counts(), "mariadb", "table_counts-deployed")
    assert counts["keystone"] == 49 and counts["neutron"] == 189 and "nova" not in counts


def test_sql_rows_split_columns_and_unescape_values() -> None:
    fact = sql_rows("SELECT host, note FROM t")
    assert fact.argv[:-1] == MARIADB_QUERY
    rows = fact.parse(Result("ctl-1", fact.argv, 0, "cmp-1\tfirst\\tline\ncmp-2\t\n\n", ""))
    assert rows == (("cmp-1", "first\tline"), ("cmp-2", ""))
    with pytest.raises(CommandError):
        fact.parse(Result("ctl-1", fact.argv, 1, "", "ERROR 1146 (42S02): Table 't' doesn't exist"))
