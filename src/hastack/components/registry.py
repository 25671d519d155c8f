"""The components, in deploy order, and the merge of their desired state per node."""

from __future__ import annotations

import importlib
from functools import cache

from hastack.components.base import Component, Ctx, Desired

# One module per component under hastack.components; order is the deploy order.
MODULES: tuple[str, ...] = (
    "common",
    "galera",
    "garbd",
    "rabbitmq",
    "rabbit_watch",
    "memcached",
    "haproxy",
    "keepalived",
    "keystone",
    "glance",
    "placement",
    "nova",
    "neutron",
    "cinder",
    "heat",
    "telemetry",
    "api_watchdog",
    "corosync",
    "pacemaker",
)


@cache
def components() -> tuple[Component, ...]:
    return tuple(importlib.import_module(f"hastack.components.{m}").COMPONENT for m in MODULES)


def component(name: str) -> Component:
    for c in components():
        if c.name == name:
            return c
    raise KeyError(name)


def desired(ctx: Ctx) -> dict[str, Desired]:
    """Every node's desired state. Duplicate paths across components are a bug and raise."""
    out: dict[str, Desired] = {}
    for node in ctx.topo.nodes:
        d = Desired(node)
        seen: dict[str, str] = {}
        for comp in components():
            if not comp.applies(ctx.topo, node):
                continue
            for f in comp.files(ctx, node):
                if f.path in seen:
                    raise ValueError(f"{node.name}: {f.path} rendered by both {seen[f.path]} and {comp.name}")
                seen[f.path] = comp.name
                d.files.append(f)
            d.packages += [p for p in comp.packages(ctx.topo, node) if p not in d.packages]
            d.units += [u for u in comp.units(ctx.topo, node) if u not in d.units]
        out[node.name] = d
    return out
