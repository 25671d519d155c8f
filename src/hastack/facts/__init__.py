"""Facts: what a host actually has, as a command plus a pure parser of its output.

    state = await gather(transport, file_state(["/etc/haproxy/haproxy.cfg"]))
    status = await gather_all(fleet.transports, galera_status())   # PerHost[GaleraStatus]
"""

from hastack.facts.base import Fact, FactError, gather, gather_all, require_exit
from hastack.facts.files import FileState, file_state, read_text, render_file_state
from hastack.facts.galera import (
    GaleraStatus,
    GraState,
    RecoveredPosition,
    galera_status,
    galera_variables,
    grastate,
    wsrep_recover,
)
from hastack.facts.haproxy import HAProxyStats, StatRow, show_stat
from hastack.facts.pacemaker import CrmMon, CrmNode, CrmResource, FailedAction, FenceEvent, crm_mon
from hastack.facts.rabbitmq import Queue, Queues, RabbitCluster, cluster_status, queues
from hastack.facts.system import Addresses, Package, UnitState, addresses, packages, units

__all__ = [
    "Addresses",
    "CrmMon",
    "CrmNode",
    "CrmResource",
    "Fact",
    "FactError",
    "FailedAction",
    "FenceEvent",
    "FileState",
    "GaleraStatus",
    "GraState",
    "HAProxyStats",
    "Package",
    "Queue",
    "Queues",
    "RabbitCluster",
    "RecoveredPosition",
    "StatRow",
    "UnitState",
    "addresses",
    "cluster_status",
    "crm_mon",
    "file_state",
    "galera_status",
    "galera_variables",
    "gather",
    "gather_all",
    "grastate",
    "packages",
    "queues",
    "read_text",
    "render_file_state",
    "require_exit",
    "show_stat",
    "units",
    "wsrep_recover",
]
