"""Pacemaker's view of the cluster, from `crm_mon --output-as=xml` (pacemaker 2.1).

Nodes (online, standby, offline, unclean), quorum and DC, every primitive with the nodes it
runs on (inside groups, clones and bundles), failed actions and the fencing history. Also
reads the legacy `crm_mon -1 -X` document (root element `crm_mon`), which has the same parts.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass

from hastack.facts.base import Fact, first_line, require_exit
from hastack.transport.base import Result


def _bool(el: ET.Element, attr: str, default: bool = False) -> bool:
    value = el.get(attr)
    return default if value is None else value == "true"


@dataclass(frozen=True)
class CrmNode:
    name: str
    id: str
    online: bool
    standby: bool
    standby_onfail: bool
    maintenance: bool
    pending: bool
    unclean: bool
    shutdown: bool
    is_dc: bool
    resources_running: int
    type: str

    @property
    def state(self) -> str:
        """One word: unclean, offline, standby, maintenance, pending or online."""
        if self.unclean:
            return "unclean"
        if not self.online:
            return "offline"
        if self.standby or self.standby_onfail:
            return "standby"
        if self.maintenance:
            return "maintenance"
        return "pending" if self.pending else "online"


@dataclass(frozen=True)
class CrmResource:
    id: str
    agent: str
    role: str
    active: bool
    failed: bool
    managed: bool
    blocked: bool
    orphaned: bool
    target_role: str
    nodes: tuple[str, ...]
    group: str = ""
    clone: str = ""
    """The enclosing clone or bundle id ("" for a plain primitive or group member)."""


@dataclass(frozen=True)
class FailedAction:
    op_key: str
    node: str
    exitstatus: str
    exitreason: str
    exitcode: int
    status: str
    task: str
    last_rc_change: str

    @property
    def resource(self) -> str:
        """`neutron-l3_monitor_10000` -> `neutron-l3` (op keys are resource_task_interval)."""
        parts = self.op_key.rsplit("_", 2)
        return parts[0] if len(parts) == 3 else self.op_key


@dataclass(frozen=True)
class FenceEvent:
    action: str
    target: str
    status: str
    """success, failed or pending."""
    origin: str
    delegate: str
    client: str
    completed: str
    exit_reason: str = ""


@dataclass(frozen=True)
class CrmMon:
    available: bool
    error: str = ""
    dc: str = ""
    with_quorum: bool = False
    stonith_enabled: bool | None = None
    maintenance_mode: bool = False
    pacemakerd_state: str = ""
    nodes: tuple[CrmNode, ...] = ()
    resources: tuple[CrmResource, ...] = ()
    failures: tuple[FailedAction, ...] = ()
    fencing: tuple[FenceEvent, ...] = ()

    def node(self, name: str) -> CrmNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def nodes_in(self, state: str) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes if n.state == state)

    def running_on(self, resource_id: str) -> tuple[str, ...]:
        """Nodes running the primitive, a group's members, or a clone's instances."""
        found = {n for r in self.resources if resource_id in (r.id, r.group, r.clone) for n in r.nodes}
        return tuple(sorted(found))

    def resource(self, resource_id: str) -> CrmResource:
        for r in self.resources:
            if r.id == resource_id:
                return r
        raise KeyError(resource_id)


def _resources(parent: ET.Element, group: str = "", clone: str = "") -> Iterator[CrmResource]:
    for el in parent:
        if el.tag == "resource":
            yield CrmResource(
                el.get("id", ""), el.get("resource_agent", ""), el.get("role", ""), _bool(el, "active"),
                _bool(el, "failed"), _bool(el, "managed", True), _bool(el, "blocked"), _bool(el, "orphaned"),
                el.get("target_role", ""), tuple(n.get("name", "") for n in el.findall("node")), group, clone)
        elif el.tag == "group":
            # a group inside a clone is named "<group>:<instance>"
            yield from _resources(el, el.get("id", "").split(":")[0], clone)
        elif el.tag in ("clone", "bundle"):
            yield from _resources(el, group, el.get("id", ""))
        elif el.tag == "replica":
            yield from _resources(el, group, clone)


def _node(el: ET.Element) -> CrmNode:
    return CrmNode(
        el.get("name", ""), el.get("id", ""), _bool(el, "online"), _bool(el, "standby"),
        _bool(el, "standby_onfail"), _bool(el, "maintenance"), _bool(el, "pending"), _bool(el, "unclean"),
        _bool(el, "shutdown"), _bool(el, "is_dc"), int(el.get("resources_running", "0")), el.get("type", ""))


def _failure(el: ET.Element) -> FailedAction:
    return FailedAction(
        el.get("op_key") or el.get("id") or "", el.get("node", ""), el.get("exitstatus", ""),
        el.get("exitreason", ""), int(el.get("exitcode", "0")), el.get("status", ""), el.get("task", ""),
        el.get("last-rc-change", ""))


def _fence(el: ET.Element) -> FenceEvent:
    return FenceEvent(
        el.get("action", ""), el.get("target", ""), el.get("status", ""), el.get("origin", ""),
        el.get("delegate", ""), el.get("client", ""), el.get("completed", ""), el.get("exit-reason", ""))


def _status_error(root: ET.Element) -> str | None:
    status = root.find("status")
    if status is None or status.get("code", "0") == "0":
        return None
    errors = [e.text or "" for e in status.findall("errors/error")]
    return "; ".join([status.get("message", "")] + errors).strip("; ")


def parse_crm_mon(text: str) -> CrmMon:
    root = ET.fromstring(text.strip())
    if root.tag not in ("pacemaker-result", "crm_mon"):
        raise ValueError(f"unexpected root element <{root.tag}>")
    if (error := _status_error(root)) is not None and root.find("summary") is None:
        return CrmMon(False, error=error)
    dc = root.find("summary/current_dc")
    options = root.find("summary/cluster_options")
    pacemakerd = root.find("pacemakerd")
    resources = root.find("resources")
    return CrmMon(
        True,
        error=error or "",
        dc=dc.get("name", "") if dc is not None and _bool(dc, "present") else "",
        with_quorum=dc is not None and _bool(dc, "with_quorum"),
        stonith_enabled=None if options is None else _bool(options, "stonith-enabled"),
        maintenance_mode=options is not None and _bool(options, "maintenance-mode"),
        pacemakerd_state=pacemakerd.get("state", "") if pacemakerd is not None else "",
        nodes=tuple(_node(n) for n in root.findall("nodes/node")),
        resources=tuple(_resources(resources)) if resources is not None else (),
        failures=tuple(_failure(f) for f in root.findall("failures/failure")),
        fencing=tuple(_fence(f) for f in root.findall("fence_history/fence_event")),
    )


CRM_MON = ("crm_mon", "--one-shot", "--inactive", "--fence-history=2", "--output-as=xml")


def crm_mon() -> Fact[CrmMon]:
    """Pacemaker not running on the node is an answer (available=False), not a failure."""

    def parse(r: Result) -> CrmMon:
        if "<" not in r.stdout:
            return CrmMon(False, error=first_line(r.stderr) or f"crm_mon exited {r.exit_status}")
        return parse_crm_mon(r.stdout)

    return Fact("crm_mon", CRM_MON, parse, 30.0)


def parse_resource_ids(text: str) -> frozenset[str]:
    """The ids of the resources configured in the CIB's `<resources>` section (`cibadmin -Q -o
    resources`): primitives, groups, clones and bundles, nested ones included; not their operations."""
    root = ET.fromstring(text)
    if root.tag != "resources":
        raise ValueError(f"expected <resources>, got <{root.tag}>")
    kinds = {"primitive", "group", "clone", "master", "bundle"}
    return frozenset(el.get("id", "") for el in root.iter() if el.tag in kinds and el.get("id"))


def resource_ids() -> Fact[frozenset[str]]:
    return Fact("cib_resource_ids", ("cibadmin", "-Q", "-o", "resources"),
                lambda r: parse_resource_ids(require_exit(r).stdout), 30.0)


QNET_CA_NICK = "QNet CA"
"""The nickname corosync-qdevice-net-certutil(8) gives the qnetd CA it imports into a member's database."""


def pem_body(text: str) -> str:
    """The base64 of the first PEM certificate in `text`, whitespace removed ('' when there is none):
    one certificate compared with another whatever the line endings or the labels around it."""
    lines = text.splitlines()
    try:
        begin = next(i for i, ln in enumerate(lines) if ln.startswith("-----BEGIN CERTIFICATE"))
        end = next(i for i in range(begin + 1, len(lines)) if lines[i].startswith("-----END CERTIFICATE"))
    except StopIteration:
        return ""
    return "".join(ln.strip() for ln in lines[begin + 1:end])


def trusted_qnetd_ca(db: str) -> Fact[str]:
    """The qnetd CA a qdevice member trusts (its NSS database `db`), as `pem_body` ('' when none)."""
    argv = ("certutil", "-L", "-d", db, "-n", QNET_CA_NICK, "-a")
    return Fact("qdevice_trusted_ca", argv, lambda r: pem_body(r.stdout) if r.exit_status == 0 else "", 15.0)


def parse_running_nodeid(text: str) -> int:
    """`corosync-cmapctl -g runtime.votequorum.this_node_id`: `runtime.votequorum.this_node_id (u32) = 21`."""
    key, sep, value = text.strip().rpartition("=")
    if not sep or "this_node_id" not in key:
        raise ValueError(f"not a this_node_id key: {text.strip()[:200]!r}")
    return int(value.strip())


def running_nodeid() -> Fact[int | None]:
    """The nodeid the running corosync uses (None when corosync does not run: nothing to compare)."""

    def parse(r: Result) -> int | None:
        return parse_running_nodeid(r.stdout) if r.exit_status == 0 else None

    return Fact("corosync_nodeid", ("corosync-cmapctl", "-g", "runtime.votequorum.this_node_id"), parse, 15.0)


# -- failure counts (crm_mon's node_history; the CrmMon fact keeps no history) --------------------------

@dataclass(frozen=True)
class FailCount:
    node: str
    resource: str
    count: int
    threshold: int
    """migration-threshold: at this count the resource is banned from the node."""

    @property
    def banned(self) -> bool:
        return self.threshold > 0 and self.count >= self.threshold


def parse_fail_counts(text: str) -> tuple[FailCount, ...]:
    """`fail-count` and `migration-threshold` of crm_mon's node_history (the fact keeps no history)."""
    root = ET.fromstring(text.strip())
    out = []
    for node in root.findall("node_history/node"):
        for rh in node.findall("resource_history"):
            count = int(rh.get("fail-count", "0") or 0)
            if count:
                out.append(FailCount(node.get("name", ""), rh.get("id", ""), count,
                                     int(rh.get("migration-threshold", "0") or 0)))
    return tuple(out)
