"""What status asks each host, and how each answer is read.

Per role, a list of bundle tasks (see bundle.py): the facts' own commands (wsrep status,
grastate.dat, HAProxy's `show stat`, `ip addr`, `systemctl show`, `crm_mon`), memcached's
`stats` on the node's own address, and the RabbitMQ management API on the node itself. The
answers go through the facts' tested parsers; the few readers that have no fact yet (memcached
stats, the management API's JSON, Pacemaker fail counts) live here, tested on recorded output.

A section that could not be read leaves its field None and says why in `problems`; a field is
never guessed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hastack.components import memcached, pacemaker
from hastack.facts import (
    Addresses,
    CrmMon,
    GaleraStatus,
    GraState,
    HAProxyStats,
    UnitState,
    addresses,
    crm_mon,
    galera_status,
    grastate,
    show_stat,
    units,
)
from hastack.facts.memcached import MemcachedStats, parse_memcached
from hastack.facts.pacemaker import FailCount, parse_fail_counts
from hastack.status import rabbit
from hastack.status.bundle import Section, Task
from hastack.status.rabbit import RabbitFacts
from hastack.topology.model import Node, Topology
from hastack.transport.base import Result

T = TypeVar("T")

RABBIT_SECTIONS = ("rabbit", "rabbit_local", "rabbit_alarms", "rabbit_nodes", "rabbit_queues")
COMMAND_TIMEOUT = 4.0
"""Per task: a daemon that has not answered in 4 s is reported as not answering."""
MEMCACHED_SEND = "stats\r\nquit\r\n"
MEMCACHED_END = "END\r\n"


@dataclass(frozen=True)
class Credentials:
    """What status may use besides SSH: from the topology's secrets file, when it exists."""

    rabbit: tuple[str, str] | None = field(default=None, repr=False)
    db_probe: tuple[str, str] | None = field(default=None, repr=False)
    keystone_admin: str | None = field(default=None, repr=False)
    ca_cert: str | None = None
    """The cluster CA's certificate (PEM, public): what the VIP's https is verified with."""
    rotating: tuple[str, ...] = ()
    """Service logins whose rotation the secrets file records as unfinished (`components/logins.py`)."""


# -- the tasks of one host ------------------------------------------------------------------


def unit_names(topo: Topology, node: Node) -> list[str]:
    """Every unit hastack runs on the node (from the component registry), plus the members of the
    group Pacemaker runs on network nodes (systemd's view of them shows where they really run)."""
    from hastack.components.registry import components

    names: list[str] = []
    for comp in components():
        if comp.applies(topo, node):
            names += [u for u in comp.units(topo, node) if u not in names]
    if node.has("network"):
        names += [u for u in pacemaker.group_units(topo) if u not in names]
    return names


def _unit_id(name: str) -> str:
    return name if "." in name else f"{name}.service"


def haproxy_task() -> Task:
    """`show stat` on HAProxy's admin socket, done by the bundle itself with the same contract as
    the fact's script (exit 3 when nothing listens), so `show_stat().parse` reads it unchanged and
    no second python3 starts."""
    fact = show_stat()
    return Task("haproxy", "unix", COMMAND_TIMEOUT, path=fact.argv[-1], send="show stat\n", shown_as=fact.argv)


def controller_tasks(node: Node) -> list[Task]:
    t = COMMAND_TIMEOUT
    return [Task.of_fact("galera", galera_status(), t), Task.of_fact("grastate", grastate(), t),
            haproxy_task(), Task.of_fact("addresses", addresses(), t),
            Task("memcached", "tcp", t, host=str(node.address), port=memcached.PORT, send=MEMCACHED_SEND,
                 until=MEMCACHED_END)]


def tasks_for(topo: Topology, node: Node, creds: Credentials) -> list[Task]:
    tasks: list[Task] = []
    if node.has("controller"):
        tasks += controller_tasks(node)
    if node in topo.brokers:
        tasks += rabbit.tasks(node, creds.rabbit, COMMAND_TIMEOUT)
    if node.has("network"):
        tasks.append(Task.of_fact("crm_mon", crm_mon(), COMMAND_TIMEOUT))
    wanted = unit_names(topo, node)
    if wanted:
        tasks.append(Task.of_fact("units", units([_unit_id(u) for u in wanted]), COMMAND_TIMEOUT))
    # A host with nothing to ask still runs one command: an SSH handshake alone does not show
    # that the host can run anything (a kept connection would hide a hung host in --watch).
    return tasks or [Task("alive", "run", COMMAND_TIMEOUT, argv=("cat", "/proc/loadavg"))]


# -- reading the answers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A section of a host's answer that could not be used."""

    section: str
    text: str
    timed_out: bool = False
    """The daemon did not answer in time (a finding about the host), rather than output that
    status cannot read (a finding about status)."""

    def __str__(self) -> str:
        return f"{self.section}: {self.text}"


@dataclass(frozen=True)
class HostFacts:
    """What one host told status. None: not asked, or not readable (then `problems` says why)."""

    galera: GaleraStatus | None = None
    grastate: GraState | None = None
    grastate_read: bool = False
    haproxy: HAProxyStats | None = None
    addresses: Addresses | None = None
    memcached: MemcachedStats | None = None
    rabbit: RabbitFacts | None = None
    crm: CrmMon | None = None
    fail_counts: tuple[FailCount, ...] = ()
    units: dict[str, UnitState] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()

    def unit(self, name: str) -> UnitState | None:
        return self.units.get(name) or self.units.get(_unit_id(name))


class _Reader:
    """Applies parsers to sections, keeping each section's failure as a problem line."""

    def __init__(self, sections: Mapping[str, Section]):
        self.sections = sections
        self.problems: list[Problem] = []
        self.failed: set[str] = set()

    def ok(self, name: str) -> bool:
        return name in self.sections and name not in self.failed

    def read_all(self, names: Sequence[str], parse: Callable[[Mapping[str, Section]], T]) -> T | None:
        """A reader of several sections at once (it handles their timeouts itself)."""
        try:
            return parse(self.sections)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            self.failed.update(names)
            self.problems.append(Problem("/".join(n for n in names if n in self.sections),
                                         f"cannot read the answer: {exc}"))
            return None

    def read(self, name: str, parse: Callable[[Result], T]) -> T | None:
        s = self.sections.get(name)
        if s is None:
            return None
        if s.timed_out:
            self.failed.add(name)
            self.problems.append(Problem(name, s.problem, True))
            return None
        try:
            return parse(s.result)
        except (ValueError, KeyError, IndexError, TypeError, SyntaxError, ET.ParseError) as exc:
            self.failed.add(name)
            self.problems.append(Problem(name, f"cannot read the answer of `{s.result.command[:60]}`: {exc}"))
            return None


def read_host(sections: Mapping[str, Section]) -> HostFacts:
    r = _Reader(sections)
    crm = r.read("crm_mon", crm_mon().parse)
    counts = r.read("crm_mon", lambda res: parse_fail_counts(res.stdout)) if crm and crm.available else ()
    gra = r.read("grastate", grastate().parse)
    rabbit_facts = r.read_all(RABBIT_SECTIONS, rabbit.read)
    units_read: Any = r.read("units", _units_parser(sections))
    return HostFacts(
        galera=r.read("galera", galera_status().parse),
        grastate=gra, grastate_read=r.ok("grastate"),
        haproxy=r.read("haproxy", show_stat().parse),
        addresses=r.read("addresses", addresses().parse),
        memcached=r.read("memcached", parse_memcached),
        rabbit=rabbit_facts,
        crm=crm, fail_counts=counts or (),
        units=dict(units_read or {}),
        problems=tuple(r.problems),
    )


def _units_parser(sections: Mapping[str, Section]) -> Callable[[Result], dict[str, UnitState]]:
    s = sections.get("units")
    names: Sequence[str] = s.result.argv[5:] if s is not None else ()
    return units(list(names) or ["none.service"]).parse
