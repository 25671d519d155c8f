"""The API watchdog on every controller: restarts an OpenStack API unit that stopped answering.

The program is `hastack.agents.api_watchdog` (its docstring has the rule and why it exists), copied
to the node and run by systemd. Its configuration lists the node's own API addresses only, with the
same URLs HAProxy's checks ask, so it watches exactly the backends the VIP spreads over.
"""

from __future__ import annotations

import json
from pathlib import Path

from hastack.agents import api_watchdog as agent
from hastack.components import haproxy, telemetry
from hastack.components.base import HEADER, Ctx, File
from hastack.topology.model import Node, Topology

UNIT = "hastack-api-watchdog.service"
PROGRAM = "/usr/local/lib/hastack/api-watchdog"
CONF = agent.CONF
UNIT_FILE = f"/etc/systemd/system/{UNIT}"


def config(topo: Topology, node: Node) -> str:
    w = topo.tuning.api_watchdog
    apis = [{"unit": a.unit, "url": f"http://{node.address}:{a.port}{a.check_uri}", "log": a.log}
            for a in haproxy.apis(topo)]
    guards = [{"unit": g.unit, "log": g.log, "text": g.text} for g in telemetry.log_guards(topo)]
    return json.dumps({"interval_s": w.interval_s, "timeout_s": w.timeout_s, "failures": w.failures,
                       "grace_s": w.grace_s, "apis": apis, "log_guards": guards}, indent=1) + "\n"


def unit_file() -> str:
    return (f"# {HEADER}\n"
            "[Unit]\nDescription=hastack: restart an OpenStack API that stopped answering HTTP\n"
            "After=network-online.target\n\n"
            f"[Service]\nType=simple\nExecStart=/usr/bin/python3 {PROGRAM} {CONF}\n"
            "Restart=always\nRestartSec=5\n\n"
            "[Install]\nWantedBy=multi-user.target\n")


class ApiWatchdog:
    name = "api_watchdog"

    def applies(self, topo: Topology, node: Node) -> bool:
        return node.has("controller") and topo.tuning.api_watchdog.enabled and bool(haproxy.apis(topo))

    def packages(self, topo: Topology, node: Node) -> list[str]:
        return ["python3"]

    def units(self, topo: Topology, node: Node) -> list[str]:
        return [UNIT]

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        return [
            File(PROGRAM, Path(agent.__file__).read_bytes(), mode=0o755, restarts=(UNIT,)),
            File(CONF, config(ctx.topo, node), restarts=(UNIT,)),
            File(UNIT_FILE, unit_file(), restarts=(UNIT,)),
        ]


COMPONENT = ApiWatchdog()
