"""The API watchdog on every controller: restarts an OpenStack API unit that stopped answering.
On each network node it guards the Neutron agents Pacemaker runs (`agent_guards`, and the server's
view of their heartbeats below): it kills a stuck agent for Pacemaker's monitor to recover, never
restarting it behind Pacemaker's back.

The program is `hastack.agents.api_watchdog` (its docstring has the rule and why it exists), copied
to the node and run by systemd. Its configuration lists the node's own API addresses only, with the
same URLs HAProxy's checks ask, so it watches exactly the backends the VIP spreads over.
"""

from __future__ import annotations

import json
from pathlib import Path

from hastack.agents import api_watchdog as agent
from hastack.agents.api_watchdog import LogGuard
from hastack.components import haproxy, pacemaker, telemetry
from hastack.components.base import HEADER, Ctx, File
from hastack.components.galera import sql_quote
from hastack.topology.model import Node, Topology

UNIT = "hastack-api-watchdog.service"
PROGRAM = "/usr/local/lib/hastack/api-watchdog"
CONF = agent.CONF
UNIT_FILE = f"/etc/systemd/system/{UNIT}"


AGENT_GAVE_UP = "State report for this agent will be disabled"
"""What the Neutron L3, DHCP and metadata agents log when their state report raised AttributeError:
they read it as a server without state reports and stop their heartbeat for the life of the process
(neutron/agent/{dhcp,l3,metadata}/agent.py `_report_state`), so the server calls them dead for good
while the process, systemd and Pacemaker's systemd monitor all call them running."""


def agent_guards(topo: Topology, node: Node) -> tuple[list[LogGuard], list[str]]:
    """On a network node: the log guard above for each agent of the Pacemaker group, and the agents
    watched for a stopped main process (SIGSTOP) and, in the server's view, a heartbeat gone silent
    (`heartbeat_query`). All are recovered through Pacemaker: the watchdog
    kills the stuck process and Pacemaker's monitor restarts the resource as after a crash. CI's stop-23
    run saw the DHCP agent stay dead in Neutron for 15 minutes after a controller's power cycle while
    its unit stayed active; nothing recovered it, because nothing looked."""
    if not node.has("network"):
        return [], []
    units = [u for u in pacemaker.group_units(topo) if u in pacemaker.AGENT_UNITS]
    guards = [LogGuard(u, f"/var/log/neutron/{u}.log", AGENT_GAVE_UP, via="pacemaker") for u in units]
    return guards, units


def config(topo: Topology, node: Node) -> str:
    w = topo.tuning.api_watchdog
    apis = [{"unit": a.unit, "url": f"http://{node.address}:{a.port}{a.check_uri}", "log": a.log}
            for a in haproxy.apis(topo)] if node.has("controller") else []
    agents, frozen = agent_guards(topo, node)
    own = telemetry.log_guards(topo) if node.has("controller") else []
    guards = [{"unit": g.unit, "log": g.log, "text": g.text, "via": g.via} for g in [*own, *agents]]
    beats = {"defaults": WATCH_CNF, "query": heartbeat_query(topo), "units": frozen, "stale_s": STALE_S,
             "fresh_s": FRESH_S, "grace_s": BEAT_GRACE_S, "every_s": BEAT_EVERY_S} if frozen else None
    return json.dumps({"interval_s": w.interval_s, "timeout_s": w.timeout_s, "failures": w.failures,
                       "grace_s": w.grace_s, "apis": apis, "log_guards": guards,
                       "frozen": [{"unit": u, "via": "pacemaker"} for u in frozen],
                       "frozen_checks": FROZEN_CHECKS, "heartbeats": beats}, indent=1) + "\n"


FROZEN_CHECKS = 2
"""A stopped main process in two checks in a row (interval_s apart, 5-10 s): no daemon stops itself."""

# -- the server's view of the agents' heartbeats ---------------------------------------------------
WATCH_USER = "hastack_agentwatch"
WATCH_SECRET = f"db/{WATCH_USER}"
WATCH_CNF = "/etc/hastack/agent-watch.cnf"
WATCH_COLUMNS = ("binary", "host", "heartbeat_timestamp")
"""All the account may read: three columns of neutron.agents (a column grant), through the VIP."""
STALE_S = 100
"""Neutron calls an agent dead after agent_down_time (75 s, its default); then a margin."""
FRESH_S = 60
"""A peer agent of the same host reported lately (within six of its 10-s report periods, see
neutron.AGENT_REPORT_INTERVAL_S): the server takes its reports."""
BEAT_GRACE_S = 180
"""After the unit (re)starts: its first reports, a full sync on a loaded node, come first."""
BEAT_EVERY_S = 15


def heartbeat_query(topo: Topology) -> str:
    """Seconds since each agent of the shared identity last reported, as the server recorded it
    (its clock and the database's: no skew with the network node)."""
    return ("SELECT `binary`, TIMESTAMPDIFF(SECOND, heartbeat_timestamp, UTC_TIMESTAMP()) FROM agents "
            f"WHERE host = {sql_quote(topo.openstack.agent_host)}")


def watch_cnf(ctx: Ctx) -> str:
    """The mariadb client's options for the watchdog's query: root-only, it holds the password."""
    return (f"# {HEADER}\n[client]\nhost={ctx.vip}\nport=3306\nuser={WATCH_USER}\n"
            f"password={ctx.secrets.password(WATCH_SECRET)}\ndatabase=neutron\nconnect-timeout=3\n")


def watch_grant_sql(password: str) -> str:
    who = f"{sql_quote(WATCH_USER)}@'%'"
    cols = ", ".join(f"`{c}`" for c in WATCH_COLUMNS)
    return (f"CREATE USER IF NOT EXISTS {who} IDENTIFIED BY {sql_quote(password)};\n"
            f"ALTER USER {who} IDENTIFIED BY {sql_quote(password)};\n"
            f"GRANT SELECT ({cols}) ON `neutron`.`agents` TO {who};\n")


def unit_file() -> str:
    return (f"# {HEADER}\n"
            "[Unit]\nDescription=hastack: recover an OpenStack daemon that runs but stopped working\n"
            "After=network-online.target\n\n"
            f"[Service]\nType=simple\nExecStart=/usr/bin/python3 {PROGRAM} {CONF}\n"
            "Restart=always\nRestartSec=5\n\n"
            "[Install]\nWantedBy=multi-user.target\n")


class ApiWatchdog:
    name = "api_watchdog"

    def applies(self, topo: Topology, node: Node) -> bool:
        if not topo.tuning.api_watchdog.enabled:
            return False
        return (node.has("controller") and bool(haproxy.apis(topo))) or any(agent_guards(topo, node))

    def packages(self, topo: Topology, node: Node) -> list[str]:
        return ["python3", *(["mariadb-client"] if any(agent_guards(topo, node)) else [])]

    def units(self, topo: Topology, node: Node) -> list[str]:
        return [UNIT]

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        return [
            File(PROGRAM, Path(agent.__file__).read_bytes(), mode=0o755, restarts=(UNIT,)),
            File(CONF, config(ctx.topo, node), restarts=(UNIT,)),
            File(UNIT_FILE, unit_file(), restarts=(UNIT,)),
            *([File(WATCH_CNF, watch_cnf(ctx), mode=0o600, secret=True, restarts=(UNIT,))]
              if agent_guards(ctx.topo, node)[1] else []),
        ]


COMPONENT = ApiWatchdog()
