"""Rebuild a ClusterState from a recorded status case (tests/unit/recorded/status/<case>/), with the
real parsers: each host's recorded probe answer -> sections -> HostFacts, plus the recorded
client view and the hosts that could not be reached. See record_status.py for how cases are made.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from recordings import RECORDED, load

from hastack.status.bundle import BUNDLE_ARGV, parse_bundle
from hastack.status.client import ClientView
from hastack.status.collect import HostRead, assemble
from hastack.status.model import ApiCheck, Catalog, ClusterState, HostView, ServiceRow, SqlCheck
from hastack.status.probes import Credentials, read_host, tasks_for
from hastack.topology.load import load as load_topology
from hastack.topology.model import Topology

ROOT = Path(__file__).resolve().parents[2]
CREDS = Credentials(rabbit=("hastack", "not-the-real-one"), db_probe=("hastack_probe", "x"), keystone_admin="x")
"""Only decides which tasks exist (the management API ones); the values are never used here."""


def topology(case: str) -> tuple[Topology, str]:
    doc = case_doc(case)
    topo = load_topology(ROOT / doc["topology"]).topology
    assert topo is not None
    if not doc.get("api_watchdog", False):
        # Recorded before hastack-api-watchdog existed: the bundle did not ask for its unit.
        off = topo.tuning.api_watchdog.model_copy(update={"enabled": False})
        topo = topo.model_copy(update={"tuning": topo.tuning.model_copy(update={"api_watchdog": off})})
    return topo, doc["topology"]


def case_doc(case: str) -> dict[str, Any]:
    return dict(json.loads((RECORDED / "status" / case / "_case.json").read_text()))


def client_of(doc: dict[str, Any]) -> ClientView:
    c = doc["client"]
    catalog = None
    if c.get("catalog"):
        cat = c["catalog"]
        catalog = Catalog(cat["checked"], cat["error"], tuple(ServiceRow(**r) for r in cat["rows"]),
                          tuple(cat["errors"]))
    return ClientView(SqlCheck(**c["sql"]) if c.get("sql") else None, tuple(ApiCheck(**a) for a in c["apis"]),
                      catalog, c.get("catalog_note", ""))


def host_read(topo: Topology, case: str, name: str, unreachable: dict[str, str]) -> HostRead:
    node = topo.node(name)
    roles = tuple(node.roles)
    if name in unreachable:
        return HostRead(HostView(name, roles, str(node.address), False, unreachable[name]), None)
    rec = load(f"status/{case}", name)
    assert rec.argv[:3] == BUNDLE_ARGV[:3], f"status/{case}/{name} was not recorded by the status bundle"
    assert rec.exit_status == 0, f"status/{case}/{name}: the bundle itself failed"
    facts = read_host(parse_bundle(name, tasks_for(topo, node, CREDS), rec.stdout))
    return HostRead(HostView(name, roles, str(node.address), True, "", 0.1, facts.problems), facts)


def reads(case: str) -> tuple[Topology, str, dict[str, HostRead], ClientView]:
    topo, path = topology(case)
    doc = case_doc(case)
    out = {n.name: host_read(topo, case, n.name, doc["unreachable"]) for n in topo.nodes}
    return topo, path, out, client_of(doc)


def state(case: str) -> ClusterState:
    topo, path, host_reads, client = reads(case)
    return assemble(topo, path, host_reads, client, 1795716000.0, 0.5)


def with_client(s: ClusterState, **changes: Any) -> ClusterState:
    """The same state with parts of the client's view replaced (synthetic variants)."""
    return replace(s, **changes)
