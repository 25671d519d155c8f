"""RabbitMQ facts (3.10): cluster membership, partitions and alarms; quorum queue replicas.

rabbitmqctl must run on the node itself. It reads stdin, which the transports close.
A node that is down, or whose `rabbit` app is stopped, makes rabbitmqctl exit 69: the fact
says so (available=False) instead of failing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hastack.facts.base import Fact, first_line, require_exit
from hastack.facts.files import read_parsed
from hastack.transport.base import Result

QUEUE_COLUMNS = ("name", "type", "leader", "members", "online")


def _json(text: str) -> Any:
    """The JSON document in rabbitmqctl's stdout (skipping any banner line before it)."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        raise ValueError("no JSON document in the output")
    return json.loads(text[min(starts):])


def _unavailable(r: Result) -> str:
    return first_line(r.stderr) or first_line(r.stdout) or f"rabbitmqctl exited {r.exit_status}"


@dataclass(frozen=True)
class Alarm:
    node: str
    resource: str
    """memory, disk or file_descriptors."""


@dataclass(frozen=True)
class RabbitCluster:
    available: bool
    cluster_name: str = ""
    disk_nodes: tuple[str, ...] = ()
    ram_nodes: tuple[str, ...] = ()
    running_nodes: tuple[str, ...] = ()
    partitions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """node -> the peers it cannot reach; empty when the cluster is whole."""
    alarms: tuple[Alarm, ...] = ()
    versions: dict[str, str] = field(default_factory=dict)
    maintenance: dict[str, str] = field(default_factory=dict)
    error: str = ""

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.disk_nodes) | set(self.ram_nodes)))

    @property
    def stopped_nodes(self) -> tuple[str, ...]:
        """Members of the cluster that are not running (down, paused by pause_minority...)."""
        return tuple(n for n in self.members if n not in self.running_nodes)

    @property
    def partitioned(self) -> bool:
        return any(self.partitions.values())

    @property
    def app_stopped(self) -> bool:
        """The Erlang node answers but its rabbit app does not run (paused by pause_minority, or
        `stop_app`): what rabbitmqctl says when asked on such a node."""
        return not self.available and "requires the 'rabbit' app to be running" in self.error


def parse_cluster_status(text: str) -> RabbitCluster:
    """`rabbitmqctl cluster_status --formatter json`."""
    doc = _json(text)
    if not isinstance(doc, dict) or "running_nodes" not in doc:
        raise ValueError("not a cluster_status document")
    alarms = tuple(Alarm(str(a.get("node", "")), str(a.get("resource", a.get("type", ""))))
                   for a in doc.get("alarms") or [])
    partitions = {str(n): tuple(peers) for n, peers in (doc.get("partitions") or {}).items()}
    versions = {str(n): str(v.get("rabbitmq_version", "")) for n, v in (doc.get("versions") or {}).items()}
    return RabbitCluster(
        True,
        cluster_name=str(doc.get("cluster_name", "")),
        disk_nodes=tuple(doc.get("disk_nodes") or ()),
        ram_nodes=tuple(doc.get("ram_nodes") or ()),
        running_nodes=tuple(doc.get("running_nodes") or ()),
        partitions=partitions,
        alarms=alarms,
        versions=versions,
        maintenance={str(n): str(s) for n, s in (doc.get("maintenance_status") or {}).items()},
    )


def cluster_status() -> Fact[RabbitCluster]:
    def parse(r: Result) -> RabbitCluster:
        if r.exit_status != 0:
            return RabbitCluster(False, error=_unavailable(r))
        return parse_cluster_status(r.stdout)

    argv = ("rabbitmqctl", "-q", "cluster_status", "--formatter", "json")
    return Fact("rabbitmq_cluster", argv, parse, 70.0)


@dataclass(frozen=True)
class Queue:
    """A queue as `rabbitmqctl list_queues` or the management API lists it (quorum queues carry
    their replicas). The one queue type: status and the drills read the same rows."""

    name: str
    type: str
    leader: str = ""
    members: tuple[str, ...] = ()
    online: tuple[str, ...] = ()
    vhost: str = ""

    @property
    def quorum(self) -> bool:
        return self.type == "quorum"

    @property
    def offline(self) -> tuple[str, ...]:
        return tuple(m for m in self.members if m not in self.online)

    @property
    def has_leader(self) -> bool:
        return bool(self.leader) and self.leader in self.online

    @property
    def below_quorum(self) -> bool:
        return len(self.online) < len(self.members) // 2 + 1

    @property
    def label(self) -> str:
        return f"{self.vhost}/{self.name}"


@dataclass(frozen=True)
class Queues:
    available: bool
    vhost: str
    queues: tuple[Queue, ...] = ()
    error: str = ""
    complete: bool = True
    """False when rabbitmqctl printed rows and then failed (a peer did not answer in time):
    the rows are real, the list may be short."""

    def of_type(self, kind: str) -> tuple[Queue, ...]:
        return tuple(q for q in self.queues if q.type == kind)


def _names(value: object) -> tuple[str, ...]:
    """Quorum queues give lists of node names; classic queues an empty string."""
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def queue_row(q: dict[str, Any], vhost: str = "") -> Queue:
    """One queue object of `list_queues --formatter json` or of `GET /api/queues` (which says its vhost)."""
    return Queue(str(q["name"]), str(q.get("type", "")), str(q.get("leader") or ""),
                 _names(q.get("members")), _names(q.get("online")), str(q.get("vhost", vhost)))


def _rows(text: str) -> list[dict[str, Any]]:
    """The JSON formatter streams one object per line ("[", "{...}", ",{...}", "]"): read the
    whole rows even when the stream was cut short by an error."""
    rows = []
    for line in text.splitlines():
        line = line.strip().lstrip(",")
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def parse_queues(vhost: str, text: str) -> Queues:
    """`rabbitmqctl list_queues --formatter json name type leader members online`."""
    try:
        doc = json.loads(text) if text.strip() else []
    except ValueError:
        doc = _rows(text)
    if not isinstance(doc, list):
        raise ValueError("not a list_queues document")
    return Queues(True, vhost, tuple(queue_row(q, vhost) for q in doc))


def queues(vhost: str = "/") -> Fact[Queues]:
    def parse(r: Result) -> Queues:
        if r.exit_status == 0:
            return parse_queues(vhost, r.stdout)
        rows = _rows(r.stdout)
        if not rows:
            return Queues(False, vhost, error=_unavailable(r))
        return Queues(True, vhost, tuple(queue_row(q, vhost) for q in rows), error=_unavailable(r), complete=False)

    argv = ("rabbitmqctl", "-q", "list_queues", "--vhost", vhost, "--formatter", "json", *QUEUE_COLUMNS)
    return Fact(f"rabbitmq_queues {vhost}", argv, parse, 70.0)


def _json_list(text: str, what: str) -> list[dict[str, Any]]:
    doc = json.loads(text or "[]")
    if not isinstance(doc, list) or not all(isinstance(row, dict) for row in doc):
        raise ValueError(f"not a {what} document")
    return doc


def users() -> Fact[frozenset[str]]:
    """The broker's user names (`list_users`): deploy checks that `guest` is gone."""
    def parse(r: Result) -> frozenset[str]:
        return frozenset(str(u.get("user", "")) for u in _json_list(require_exit(r).stdout, "list_users"))

    return Fact("rabbitmq_users", ("rabbitmqctl", "-q", "list_users", "--formatter", "json"), parse, 70.0)


def parse_connections(text: str) -> list[tuple[str, str]]:
    """(user, peer host) of each client connection, as `list_connections user peer_host` prints it."""
    return [(str(c.get("user", "")), str(c.get("peer_host", ""))) for c in _json_list(text, "list_connections")]


def connections() -> Fact[list[tuple[str, str]]]:
    """Every client connection of the cluster (any broker answers for all): who is logged in, from where."""
    argv = ("rabbitmqctl", "-q", "list_connections", "user", "peer_host", "--formatter", "json")
    return Fact("rabbitmq_connections", argv, lambda r: parse_connections(require_exit(r).stdout), 70.0)


def parse_stopped_vhosts(text: str) -> list[tuple[str, str]]:
    """(broker, vhost) for every vhost not running on a broker, from `list_vhosts name cluster_state`."""
    return sorted((broker, str(row["name"])) for row in _json_list(text, "list_vhosts")
                  for broker, state in (row.get("cluster_state") or {}).items() if state != "running")


def stopped_vhosts() -> Fact[list[tuple[str, str]]]:
    """Where each vhost is not running. A vhost can stay stopped on a broker that was still joining
    when another added it (deploy starts it there with `restart_vhost`)."""
    return Fact("rabbitmq_stopped_vhosts",
                ("rabbitmqctl", "-q", "list_vhosts", "name", "cluster_state", "--formatter", "json"),
                lambda r: parse_stopped_vhosts(require_exit(r).stdout), 70.0)


@dataclass(frozen=True)
class Grown:
    """What `rabbitmq-queues grow` did: the queues that got a replica, and those that refused."""

    added: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()


def parse_grow(text: str) -> Grown:
    """`rabbitmq-queues grow NODE all --formatter json`: one row per quorum queue that lacked the
    node (vhost, name, size, result); result "ok" when the replica was added."""
    added: list[str] = []
    failed: list[tuple[str, str]] = []
    for row in _json_list(text, "grow"):
        name = f"{row.get('vhost', '')}/{row.get('name', '')}"
        result = str(row.get("result", ""))
        if result == "ok":
            added.append(name)
        else:
            failed.append((name, result))
    return Grown(tuple(added), tuple(failed))


def grow_queues(node: str) -> Fact[Grown]:
    """Not a read: adds NODE to every quorum queue that lacks it (idempotent: a queue that has it is
    not even listed), run on that broker. A fact because its answer is parsed like one."""
    argv = ("rabbitmq-queues", "-q", "grow", node, "all", "--formatter", "json")
    return Fact(f"rabbitmq_grow {node}", argv, lambda r: parse_grow(require_exit(r).stdout), 170.0)


def parse_cluster_nodes_config(text: str) -> tuple[str, ...]:
    """`cluster_nodes.config` in a broker's database directory (RabbitMQ 3.x, Mnesia): an Erlang
    term `{AllNodes, DiscNodes}.` written as the cluster changes; the members are the first list."""
    head = text.strip()
    if not head.startswith("{["):
        raise ValueError(f"unexpected cluster_nodes.config: {first_line(text)!r}")
    first = head[2:head.index("]")]
    return tuple(part.strip().strip("'") for part in first.split(",") if part.strip())


def cluster_file(data_dir: str) -> Fact[tuple[str, ...] | None]:
    """The cluster a stopped broker will come back in, from its database directory (None: no
    database, a new broker). `hastack plan` reads it where the broker does not answer."""
    return read_parsed("rabbitmq_cluster_file", f"{data_dir}/cluster_nodes.config", parse_cluster_nodes_config)


# -- the management API's answers (GET /api/..., asked by the status bundle on each node) ----------------

def parse_mgmt_nodes(text: str) -> RabbitCluster:
    """GET /api/nodes -> the facts' RabbitCluster (this node's view of the whole cluster)."""
    doc = json.loads(text)
    if not isinstance(doc, list):
        raise ValueError("GET /api/nodes did not return a list")
    names = [str(n["name"]) for n in doc]
    alarms = [Alarm(str(n["name"]), kind) for n in doc
              for kind, key in (("memory", "mem_alarm"), ("disk", "disk_free_alarm")) if n.get(key)]
    return RabbitCluster(
        True,
        disk_nodes=tuple(n for n, d in zip(names, doc, strict=True) if d.get("type", "disc") == "disc"),
        ram_nodes=tuple(n for n, d in zip(names, doc, strict=True) if d.get("type") == "ram"),
        running_nodes=tuple(n for n, d in zip(names, doc, strict=True) if d.get("running")),
        partitions={str(d["name"]): tuple(d.get("partitions") or ()) for d in doc if d.get("partitions")},
        alarms=tuple(alarms),
    )


def parse_mgmt_queues(text: str) -> tuple[Queue, ...]:
    """GET /api/queues: every vhost at once."""
    doc = json.loads(text)
    if not isinstance(doc, list):
        raise ValueError("GET /api/queues did not return a list")
    return tuple(queue_row(q) for q in doc)


def parse_alarms(text: str) -> tuple[Alarm, ...]:
    """GET /api/health/checks/alarms: {"status": "ok"}, or "failed" with the alarms in effect."""
    doc = json.loads(text or "{}")
    if not isinstance(doc, dict) or "status" not in doc:
        raise ValueError("not a health check answer")
    return tuple(Alarm(str(a.get("node", "")), str(a.get("resource", ""))) for a in doc.get("alarms") or [])
