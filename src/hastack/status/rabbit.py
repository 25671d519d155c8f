"""RabbitMQ through its management API on each controller, asked by the node itself.

Why the management API and not rabbitmqctl: each rabbitmqctl call boots an Erlang VM (~0.6 s of
CPU); listing every vhost's queues that way takes seconds. The API answers in milliseconds.

Why four requests: when a member is powered off, RabbitMQ keeps believing it is there until the
Erlang distribution gives up (net_ticktime, 60 s by default), and every
request that gathers data from all members (/api/nodes, /api/overview, rabbitmqctl cluster_status...) hangs meanwhile
(measured in the lab: 5 s and more per request, for minutes). So each node is asked
- `/api/health/checks/virtual-hosts`: is the broker on *this* node serving (local, fast);
- `/api/health/checks/alarms`: resource alarms in effect (fast);
- `/api/nodes` and `/api/queues`: the cluster view and every vhost's queues, with a short
  timeout; when they do not answer, that is reported as such, and the local answers still say
  which brokers serve.

Without the admin account (no secrets file) status falls back to `rabbitmqctl cluster_status`
(the fact), and quorum queues are not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hastack.components import rabbitmq
from hastack.facts import RabbitCluster, cluster_status
from hastack.facts.base import first_line
from hastack.facts.rabbitmq import Alarm, Queue, parse_alarms, parse_mgmt_nodes, parse_mgmt_queues
from hastack.status.bundle import Section, Task
from hastack.topology.model import Node

LOCAL_TIMEOUT = 2.0
VIEW_TIMEOUT = 2.5
"""Long enough for a healthy cluster (milliseconds), short enough to keep status fast while a
member is unreachable and RabbitMQ waits for it."""
QUEUE_COLUMNS = "name,vhost,type,leader,members,online"
NODE_COLUMNS = "name,type,running,partitions,mem_alarm,disk_free_alarm"
NO_ACCOUNT = "no management API account (secret rabbit/admin)"


@dataclass(frozen=True)
class RabbitFacts:
    """One controller's broker. `local` None: not known (e.g. the rabbitmqctl fallback failed)."""

    local: bool | None
    local_error: str = ""
    view: RabbitCluster | None = None
    """This broker's view of the cluster (None: it did not answer, see view_error)."""
    view_error: str = ""
    view_slow: bool = False
    alarms: tuple[Alarm, ...] = ()
    queues: tuple[Queue, ...] | None = None
    queues_error: str = ""
    queues_slow: bool = False


def tasks(node: Node, auth: tuple[str, str] | None, command_timeout: float) -> list[Task]:
    if auth is None:
        return [Task.of_fact("rabbit", cluster_status(), command_timeout)]
    base = f"http://{node.address}:{rabbitmq.MANAGEMENT_PORT}/api"

    def get(name: str, path: str, timeout: float) -> Task:
        return Task(name, "http", timeout, url=f"{base}/{path}", auth=auth)

    return [get("rabbit_local", "health/checks/virtual-hosts", LOCAL_TIMEOUT),
            get("rabbit_alarms", "health/checks/alarms", LOCAL_TIMEOUT),
            get("rabbit_nodes", f"nodes?columns={NODE_COLUMNS}", VIEW_TIMEOUT),
            get("rabbit_queues", f"queues?disable_stats=true&enable_queue_totals=true&columns={QUEUE_COLUMNS}",
                VIEW_TIMEOUT)]


# -- readers (the parsers are facts.rabbitmq's) ----------------------------------------------------


def _why(s: Section) -> str:
    r = s.result
    if r.exit_status == 2:
        return f"the management API does not answer ({first_line(r.stderr)})"
    return first_line(r.stderr) or f"exit {r.exit_status}"


def _view(sections: Mapping[str, Section]) -> tuple[RabbitCluster | None, str, bool]:
    s = sections.get("rabbit_nodes")
    if s is None:
        return None, "not asked", False
    if s.timed_out or s.result.exit_status != 0:
        return None, (s.problem if s.timed_out else _why(s)), s.timed_out
    return parse_mgmt_nodes(s.result.stdout), "", False


def _queues(sections: Mapping[str, Section]) -> tuple[tuple[Queue, ...] | None, str, bool]:
    s = sections.get("rabbit_queues")
    if s is None:
        return None, NO_ACCOUNT, False
    if s.timed_out or s.result.exit_status != 0:
        return None, (s.problem if s.timed_out else _why(s)), s.timed_out
    return parse_mgmt_queues(s.result.stdout), "", False


def _alarms(sections: Mapping[str, Section]) -> tuple[Alarm, ...]:
    s = sections.get("rabbit_alarms")
    if s is None or s.timed_out or s.result.exit_status not in (0, 1):
        return ()
    return parse_alarms(s.result.stdout)


def read(sections: Mapping[str, Section]) -> RabbitFacts | None:
    """None when RabbitMQ was not asked (not a controller). Raises ValueError on output it cannot
    read (the caller records that as a problem of the host)."""
    if "rabbit" in sections:  # the rabbitmqctl fallback
        s = sections["rabbit"]
        if s.timed_out:
            return RabbitFacts(None, s.problem, None, s.problem, True, queues_error=NO_ACCOUNT)
        seen = cluster_status().parse(s.result)
        return RabbitFacts(seen.available, seen.error, seen if seen.available else None, seen.error,
                           queues_error=NO_ACCOUNT)
    local = sections.get("rabbit_local")
    if local is None:
        return None
    serving = not local.timed_out and local.result.exit_status == 0
    view, view_error, view_slow = _view(sections)
    queues, queues_error, queues_slow = _queues(sections)
    return RabbitFacts(serving, "" if serving else (local.problem or _why(local)), view, view_error, view_slow,
                       _alarms(sections), queues, queues_error, queues_slow)
