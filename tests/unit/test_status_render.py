"""The three renderings carry the same facts: tables for people, JSON and Prometheus for monitoring."""

from __future__ import annotations

import io
import json
import re

import status_cases as sc
from rich.console import Console

from hastack.status.render import tables, to_json, to_prometheus
from hastack.status.rules import evaluate

SAMPLE = re.compile(r'^(hastack_[a-z_]+)\{((?:[a-z_]+="(?:[^"\\]|\\.)*",?)*)\} (-?[0-9.e+]+|NaN)$')


def text(case: str) -> str:
    s = sc.state(case)
    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(tables(s, evaluate(s)))
    return buf.getvalue()


def test_tables_show_each_layer_and_the_findings() -> None:
    out = text("ctl1-off")
    assert out.splitlines()[0].startswith("status (tests/lab/status.yml): DEGRADED (exit 1)")
    for title in ("Hosts", "Galera (3 votes expected)", "RabbitMQ (3 brokers expected)", "VIP 10.79.0.10",
                  "Pacemaker (neutron-agents", "OpenStack (through the VIP)", "Findings"):
        assert title in out
    assert "unreachable" in out and "holds it" in out and "HOST-UNREACHABLE" in out
    assert "-> check ctl-1's power and network" in out


def test_tables_of_a_split_show_the_next_command() -> None:
    out = text("controllers-split")
    assert "DOWN (exit 2)" in out and "non-Primary" in out
    assert "run `hastack recover galera tests/lab/status.yml`" in out


def test_json_carries_the_verdict_and_every_layer() -> None:
    s = sc.state("services-stopped")
    v = evaluate(s)
    doc = json.loads(json.dumps(to_json(s, v)))
    assert (doc["verdict"], doc["exit_code"]) == ("degraded", 1)
    assert {f["code"] for f in doc["findings"]} == set(v.codes())
    assert [h["name"] for h in doc["hosts"]] == ["ctl-1", "ctl-2", "ctl-3", "net-1", "net-2", "cmp-1"]
    g = {n["node"]: n for n in doc["galera"]["nodes"]}
    assert g["ctl-2"]["running"] is False and g["ctl-2"]["grastate"]["seqno"] == 17
    assert g["ctl-1"]["cluster_status"] == "Primary" and g["ctl-1"]["flow_control_paused"] == 0
    r = {n["node"]: n for n in doc["rabbitmq"]["nodes"]}
    assert r["ctl-3"]["serving"] is False and r["ctl-1"]["serving"] is True
    assert doc["vip"]["holders"] == ["ctl-1"]
    assert doc["pacemaker"]["group_on"] == ["net-1"] and doc["pacemaker"]["failed_actions"]
    assert {m["node"]: m["answering"] for m in doc["memcached"]}["ctl-1"] is False
    assert doc["openstack"]["services"]["keystone"]["deployed"] is False


def test_json_of_an_unreachable_host() -> None:
    doc = to_json(sc.state("ctl1-off"), evaluate(sc.state("ctl1-off")))
    ctl1 = next(h for h in doc["hosts"] if h["name"] == "ctl-1")
    assert (ctl1["reachable"], ctl1["read"]) == (False, False) and "10.79.0.11" in ctl1["error"]
    assert next(n for n in doc["galera"]["nodes"] if n["node"] == "ctl-1")["read"] is False


def parse_prometheus(body: str) -> dict[str, list[tuple[str, float]]]:
    """A strict reader of the text format: HELP and TYPE once, each family's samples together."""
    families: dict[str, list[tuple[str, float]]] = {}
    current = ""
    for line in body.splitlines():
        if line.startswith("# HELP "):
            current = line.split()[2]
            assert current not in families, f"{current} appears twice"
            families[current] = []
        elif line.startswith("# TYPE "):
            assert line.split()[2] == current and line.split()[3] in ("gauge", "counter")
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            assert m.group(1) == current, f"{m.group(1)} outside its family"
            families[current].append((m.group(2), float(m.group(3))))
    return families


def test_prometheus_exposition_is_well_formed_and_complete() -> None:
    s = sc.state("ctl1-off")
    fam = parse_prometheus(to_prometheus(s, evaluate(s)))
    assert fam["hastack_status_code"] == [('topology="status"', 1.0)]
    assert ('topology="status",host="ctl-1"', 0.0) in fam["hastack_host_up"]
    assert ('topology="status",node="ctl-2"', 1.0) in fam["hastack_vip_held"]
    assert fam["hastack_vip_holders"] == [('topology="status"', 1.0)]
    assert ('topology="status",node="ctl-2"', 2.0) in fam["hastack_galera_cluster_size"]
    assert ('topology="status",node="ctl-2",backend="galera",server="ctl-1"', 0.0) in fam["hastack_haproxy_server_up"]
    assert fam["hastack_rabbitmq_quorum_queues_replica_offline"] == [('topology="status"', 1.0)]
    assert ('topology="status",node="net-1",group="neutron-agents"', 1.0) in fam["hastack_pacemaker_group_running"]
    assert ('topology="status",level="degraded"', 5.0) in fam["hastack_findings"]


def test_prometheus_label_values_are_escaped() -> None:
    from hastack.status.prometheus import Metrics

    m = Metrics('we"ird\\name')
    m.add("x", 1, "help", node="a\nb")
    assert m.text().splitlines()[-1] == 'hastack_x{topology="we\\"ird\\\\name",node="a\\nb"} 1'


def test_json_haproxy_frontends_backends_and_servers() -> None:
    s = sc.state("ctl1-off")
    ctl2 = next(h for h in to_json(s, evaluate(s))["haproxy"] if h["node"] == "ctl-2")
    assert ctl2["frontends"]["galera"] == "OPEN" and ctl2["galera_writer"] == "ctl-2"
    galera = ctl2["backends"]["galera"]
    assert galera["status"] == "UP" and galera["servers"]["ctl-1"]["status"] == "DOWN"
    assert galera["servers"]["ctl-3"]["backup"] is True
    assert ctl2["backends"]["keystone"]["servers"] is None  # not deployed: its servers are not judged


def test_a_whole_deployment_fits_the_table() -> None:
    out = text("seed-openstack")
    assert "HEALTHY (exit 0)" in out and "all 10 UP (3/3)" in out
    assert "nova-scheduler 3/3 up" in out and "neutron-l3-agent 1/1 up" in out
