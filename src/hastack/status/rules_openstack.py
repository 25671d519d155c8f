"""OpenStack rules: each API through the VIP, and the service and agent lists behind Keystone.

A service that no API answers for and whose units neither run nor are enabled on any controller
is "not deployed" (info): the topology names it, nothing runs it yet.
"""

from __future__ import annotations

from collections.abc import Iterator

from hastack.status.model import ClusterState, ServiceRow
from hastack.status.rules_base import DEGRADED, DOWN, INFO, UNKNOWN
from hastack.status.verdict import Finding, finding


def apis(s: ClusterState) -> Iterator[Finding]:
    o = s.openstack
    for service in o.services:
        if not o.deployed(service):
            yield finding("OS-NOT-DEPLOYED", INFO, "openstack", f"{service}: not deployed (no API answers through the "
                          "VIP, no unit runs or is enabled on a controller)")
            continue
        for a in (a for a in o.apis if a.service == service and not a.ok):
            got = f"HTTP {a.status}" if a.status is not None else a.error
            yield finding("OS-API-DOWN", DOWN, "openstack", f"{a.title}: GET {a.url} -> {got} (expected {a.expected})",
                          "see which controllers' servers are DOWN in HAProxy (haproxy rows above)")


def catalog(s: ClusterState) -> Iterator[Finding]:
    o = s.openstack
    c = o.catalog
    if c is None:
        if o.catalog_note and o.deployed("keystone"):
            yield finding("OS-LISTS-UNCHECKED", INFO, "openstack", f"service lists not read: {o.catalog_note}")
        return
    if not c.checked:
        yield finding("OS-AUTH-FAILED", DEGRADED, "openstack", c.error, "check the keystone/admin secret and Keystone")
        return
    for e in c.errors:
        yield finding("OS-LIST-FAILED", UNKNOWN, "openstack", e)
    yield from _services(c.rows)


def _services(rows: tuple[ServiceRow, ...]) -> Iterator[Finding]:
    binaries: dict[tuple[str, str], list[ServiceRow]] = {}
    for r in rows:
        if r.enabled:
            binaries.setdefault((r.kind, r.binary), []).append(r)
    for (_kind, binary), rs in binaries.items():
        # A host counts as down only when none of its records is up: heat-engine registers a new
        # record (a new engine id) at every start and leaves the old one "down" until it is purged.
        up_hosts = {r.host for r in rs if r.up}
        down = sorted({r.host for r in rs if not r.up} - up_hosts)
        if down and len(down) == len(rs):
            yield finding("OS-SERVICE-ALL-DOWN", DOWN, "openstack", f"{binary} is down everywhere ({', '.join(down)})")
        elif down:
            yield finding("OS-SERVICE-DOWN", DEGRADED, "openstack", f"{binary} is down on {', '.join(down)} "
                          f"(up on {', '.join(r.host for r in rs if r.up)})", node=down[0])
