"""Pacemaker on the network nodes: fencing plus the Neutron L3/DHCP/metadata agents as one group.

The configuration is one crmsh file, identical on every member, holding the *whole* configuration.
Deploy applies it from one member with `crm configure load update FILE`:
- `update` replaces each object of the file by id and merges property sets, so applying the same
  file twice changes nothing (CIB epoch unchanged, no restarts; checked in the image tests), and
  what Pacemaker keeps in the CIB itself survives (dc-version, node entries and their attributes
  such as standby);
- `replace` would drop those, and `push` deletes every object not in the file, nodes included.
Because property sets merge, every property hastack manages is always written (priority-fencing-delay
as 0s when off). Objects hastack stops rendering would stay, so deploy deletes them by id in the
crmsh session that loads the file (`stale_resources`: the agents' group of before, the fence device
of a node no longer fenced); `owned_ids()` lists the current ones. Those deletes are made on a
copy of the CIB without its status, then the copy's configuration replaces the live one in one
write (`apply_argv`): crmsh's `delete --force` of a running group first stops it (target-role
Stopped, then waits for the DC), and on the seed lab that restarted every agent; moved out of the
group by a configuration replace, the same ids keep running (0 restarts, measured on the seed lab
and checked with `crm_simulate` in the image tests).

The agents are not a Pacemaker group: a group starts its members one after another, and on a
failover the three agents waited for each other (cleanup, metadata, DHCP, L3: 2 + 2 + 3 + 2 s, issue
13). Instead every agent is colocated with the cleanup resource (the primary: placed first, and it
takes its dependents' scores into account, so an agent that reaches migration-threshold on a node
moves them all) and ordered after it (symmetric, so they stop before it): the cleanup starts, then
the agents start in parallel. With Open vSwitch its L2 agent sits between the two (the others plug
into the bridges it builds). Checked with `crm_simulate` in the image tests: the start order, the
move on a third failure, the stop order, no fail-back. The DHCP and L3 agents' metadata proxies
forward to the metadata agent's socket; started beside it, a proxy may refuse the first requests of
a second or two, which instances retry. A `tag` keeps the one name `neutron-agents` for crmsh
(`crm resource stop neutron-agents`). Stickiness (100 per member, 400 for the set, as in a group)
keeps them where they run when a failed node comes back (a move is an outage of every router and
DHCP server).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hastack.components import corosync
from hastack.components.base import Ctx, File, template
from hastack.topology.model import FenceDevice, Node, Topology

SCRIPT = "/etc/hastack/pacemaker.crm"
PACKAGES = ("pacemaker", "corosync", "cluster-glue", "resource-agents", "crmsh", "fence-agents")
"""The seed document's cluster stack, named whole (corosync.py asks for corosync too, and pacemaker
depends on it). Nothing hastack renders needs cluster-glue: it is there because the seed lists it,
for its tools (ha_logger, hb_report, the `stonith` command of the legacy fence plugins)."""
GROUP = "neutron-agents"
"""The agents' one name: a crmsh tag over the set (before: a group of that id, removed by deploy)."""
AGENT_UNITS = ("neutron-metadata-agent", "neutron-dhcp-agent", "neutron-l3-agent")
"""Started and stopped by Pacemaker only: systemd must keep them disabled on the network nodes."""

GROUP_PRIORITY = 10
STICKINESS = 100
FENCE_MONITOR = "60s"
FENCE_MONITOR_TIMEOUT = "20s"
AGENT_MONITOR = "10s"
AGENT_TIMEOUT = "100s"
"""start, stop and monitor: the timeout Pacemaker's systemd class advises (crmsh warns below it).
Stop matters most: a stop that times out is a failed stop, and with fencing on that fences the
node. Debian's agent units stop within TimeoutStopSec=15 (then SIGKILL), far inside 100 s. A crash
is still seen within the 10 s monitor interval: Pacemaker overrides the units' Restart=on-failure."""


@dataclass(frozen=True)
class Dir:
    path: str
    owner: str
    group: str
    mode: int


DIRS: tuple[Dir, ...] = (
    Dir("/var/lib/pacemaker/cib", "hacluster", "haclient", 0o750),
    Dir("/var/lib/pacemaker/pengine", "hacluster", "haclient", 0o750),
    Dir("/var/lib/pacemaker/blackbox", "hacluster", "haclient", 0o750),
    Dir("/var/lib/pacemaker/cores", "hacluster", "haclient", 0o750),
    Dir("/var/log/pacemaker", "hacluster", "haclient", 0o770),
    Dir("/var/log/pacemaker/bundles", "hacluster", "haclient", 0o770),
)
"""As Debian's package ships them. Pacemaker's daemons run as hacluster and fail when these lose
their ownership (seen in the lab, e.g. after a copy without numeric ids): deploy enforces them
before starting pacemaker. Files cannot express directories, hence this list."""


def fence_id_prefix() -> str:
    return "fence-"


def fence_id(node: Node) -> str:
    return f"{fence_id_prefix()}{node.name}"


def agent_id(unit: str) -> str:
    return unit.removesuffix(".service")


def group_units(topo: Topology) -> list[str]:
    """The group's members in start order: what neutron says must move together (the namespace
    cleanup first, so it stops last; with Open vSwitch its L2 agent; then the three agents)."""
    from hastack.components import neutron

    if not topo.runs("neutron"):
        return []  # a network cluster without neutron keeps only its fencing
    return [u.removesuffix(".service") for u in neutron.cluster_units(topo)]


@dataclass(frozen=True)
class Constraint:
    """One simple constraint: `colocation ID inf: DEPENDENT PRIMARY` or `order ID Mandatory: FIRST THEN`."""

    kind: str
    id: str
    first: str
    then: str


def constraints(topo: Topology) -> list[Constraint]:
    """The set's shape: every member after the cleanup colocated with it (a star: one primary); the
    members before the parallel three (cleanup, and the OVS L2 agent) ordered in a chain, the three
    each after the last of those. Simple two-resource constraints, not resource sets: their direction
    reads as written (rsc with with-rsc; first then)."""
    ids = [agent_id(u) for u in group_units(topo)]
    if not ids:
        return []
    parallel = [i for i in ids if i in AGENT_UNITS]
    chain = [i for i in ids if i not in parallel]
    out = [Constraint("colocation", f"{i}-with-{ids[0]}", i, ids[0]) for i in ids[1:]]
    out += [Constraint("order", f"{a}-then-{b}", a, b) for a, b in zip(chain, chain[1:], strict=False)]
    out += [Constraint("order", f"{chain[-1]}-then-{i}", chain[-1], i) for i in parallel]
    return out


def owned_ids(topo: Topology) -> list[str]:
    """Every CIB object id this file defines; ids that look like ours but are not here are stale."""
    units = group_units(topo)
    ids = [GROUP, *(agent_id(u) for u in units), *(c.id for c in constraints(topo))] if units else []
    for n in _fenced(topo):
        ids += [fence_id(n), f"{fence_id(n)}-not-on-{n.name}"]
    return ids


def stale_resources(topo: Topology, live: list[str]) -> list[str]:
    """Resources in the CIB that an earlier hastack wrote and this one does not: the agents' group of
    before (its members stay: the same ids are primitives of the set now) and the fence device of a
    node no longer fenced. Deleted by deploy in the same crmsh session that loads the file."""
    owned = set(owned_ids(topo))
    return [i for i in live if i == GROUP or (i.startswith(fence_id_prefix()) and i not in owned)]


def configure_commands(topo: Topology, live: list[str]) -> bytes:
    """crmsh commands, fed on stdin to one `crm configure` session: one commit, so the cluster
    never sees the agents without their constraints, nor the tag beside the group of the same id.
    With deletes, the session runs on a status-less copy of the CIB (`apply_argv`), where
    `--force` stops nothing: nothing runs in a copy without status."""
    deletes = [f"delete --force {i}" for i in stale_resources(topo, live)]
    return "\n".join([*deletes, f"load update {SCRIPT}", "commit", ""]).encode()


APPLY_ON_A_COPY = """set -eu
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cibadmin --query > "$work/cib.xml"
CIB_file="$work/cib.xml" cibadmin --replace --scope status --xml-text '<status/>'
CIB_file="$work/cib.xml" crm configure
CIB_file="$work/cib.xml" cibadmin --query --scope configuration > "$work/configuration.xml"
cibadmin --replace --scope configuration --xml-file "$work/configuration.xml"
"""
"""The crmsh session (stdin) edits a copy of the CIB whose status is emptied; its configuration
then replaces the live one in one CIB write. No value is interpolated: the script is constant."""


def apply_argv(stale: list[str]) -> list[str]:
    """How deploy runs `configure_commands`: straight on the live CIB when nothing is deleted (a
    no-change load is not even a write), else on a copy (APPLY_ON_A_COPY). `stale`: stale_resources."""
    if stale:
        return ["sh", "-c", APPLY_ON_A_COPY, "hastack-apply-cib"]
    return ["crm", "configure"]


def fencing_delay_s(topo: Topology) -> int:
    """priority-fencing-delay: required in two_node mode (validation refuses 0 there), honoured
    whenever the operator sets it; 0 = off."""
    return topo.tuning.corosync.priority_fencing_delay_s


def properties(topo: Topology) -> list[tuple[str, str]]:
    props = [
        ("stonith-enabled", "true" if topo.fencing.enabled else "false"),
        ("no-quorum-policy", "stop"),
        ("symmetric-cluster", "true"),
        ("dc-deadtime", f"{topo.tuning.corosync.dc_deadtime_s}s"),
        ("cluster-recheck-interval", "5min"),
        # Always written, 0s when off: `load update` merges property sets, so a property left out
        # of the file would keep its old value in the CIB (e.g. after moving from two_node to qdevice).
        ("priority-fencing-delay", f"{fencing_delay_s(topo)}s"),
    ]
    return props


def rsc_defaults() -> list[tuple[str, str]]:
    """Stickiness against fail-back; three failures on a node move the group; failures expire."""
    return [("resource-stickiness", str(STICKINESS)), ("migration-threshold", "3"),
            ("failure-timeout", "10min")]


def _fenced(topo: Topology) -> list[Node]:
    if not topo.fencing.enabled:
        return []
    return [n for n in corosync.members(topo) if n.fencing is not None]


CRM_PLAIN = re.compile(r"[A-Za-z0-9_.,:/@+-]+")
"""Characters that mean nothing to crmsh's lexer: such a value is written bare."""


def crm_value(value: str | int | bool) -> str:
    """One crmsh attribute value, as crmsh will read it back: it splits the file into lines (a
    trailing backslash continues one) and each line with `shlex.split` (POSIX), and turns non-ASCII
    into XML character references. So printable ASCII only, and anything but plain characters goes
    in double quotes, where POSIX shlex gives a meaning to exactly two escapes: \\ and \".
    The model already refuses the rest; this refuses it again so no caller can bypass it."""
    text = ("1" if value else "0") if isinstance(value, bool) else str(value)
    if not all(" " <= c <= "~" for c in text):
        raise ValueError(f"fence parameter value {text!r} cannot be written to a crmsh file")
    if CRM_PLAIN.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fence_params(node: Node, dev: FenceDevice) -> str:
    params: dict[str, str | int | bool] = dict(dev.params)
    params.setdefault("pcmk_host_list", node.name)
    return " ".join(f"{crm_key(k)}={crm_value(v)}" for k, v in params.items())


def crm_key(key: str) -> str:
    """A parameter name is a bare token: the model's pattern, checked again here."""
    if not CRM_KEY.fullmatch(key):
        raise ValueError(f"fence parameter name {key!r} cannot be written to a crmsh file")
    return key


CRM_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")


def fence_secrets(topo: Topology) -> list[str]:
    """Fence credentials (passwd, password, ...) of every fenced node: the crm file holding them is
    secret, and deploy masks them in anything it prints."""
    return [v for n in _fenced(topo) if n.fencing is not None for v in n.fencing.secret_values()]


def script(topo: Topology) -> str:
    fencing = [
        {"id": fence_id(n), "node": n.name, "agent": n.fencing.agent, "params": fence_params(n, n.fencing),
         "monitor": FENCE_MONITOR, "timeout": FENCE_MONITOR_TIMEOUT}
        for n in _fenced(topo) if n.fencing is not None
    ]
    agents = [
        {"id": agent_id(u), "unit": u, "start": AGENT_TIMEOUT, "stop": AGENT_TIMEOUT,
         "interval": AGENT_MONITOR, "monitor": AGENT_TIMEOUT}
        for u in group_units(topo)
    ]
    # The agents' priority makes their node the one priority-fencing-delay protects in a split: a
    # node's priority is the sum over the primitives running there, as the group's members each had.
    meta = f"priority={GROUP_PRIORITY}" if fencing_delay_s(topo) else ""
    return template(
        "pacemaker/pacemaker.crm.j2",
        cluster_name=topo.name, path=SCRIPT, properties=properties(topo), rsc_defaults=rsc_defaults(),
        fencing=fencing, agents=agents, agent_meta=meta, constraints=constraints(topo), tag=GROUP,
    )


class Pacemaker:
    name = "pacemaker"

    def applies(self, topo: Topology, node: Node) -> bool:
        return node.has("network")

    def packages(self, topo: Topology, node: Node) -> list[str]:
        return list(PACKAGES)

    def units(self, topo: Topology, node: Node) -> list[str]:
        return ["pacemaker"]

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        # No restarts: a changed file is applied by deploy (crm configure load update), not by a restart.
        if fence_secrets(ctx.topo):  # a fence password: root only, and never shown in a plan's diff
            return [File(SCRIPT, script(ctx.topo), mode=0o600, secret=True)]
        return [File(SCRIPT, script(ctx.topo))]


COMPONENT = Pacemaker()
