"""Tuning profiles for `hastack bench`: hastack's own tuning, and `reference`, the common defaults.

`reference` reproduces what a deployment gets when it leaves these knobs alone (the upstream
defaults that most guides copy), so the bench shows what hastack's tuning buys on the same lab:
- keepalived `advert_int 1` (the VRRP default) at normal scheduling (`rt_priority 0`);
- HAProxy `check inter 2000 rise 2 fall 5` (HAProxy's defaults when `check` is given without
  timing; `fastinter`/`downinter` then default to `inter`);
- corosync `token 3000` (corosync 3's default) and Pacemaker's `dc-deadtime` 20 s;
- Galera's default evs timeouts: `suspect_timeout PT5S`, `inactive_timeout PT15S`,
  `keepalive_period PT1S`;
- RabbitMQ's defaults: `cluster_partition_handling = ignore`, `net_ticktime = 60`, and
  oslo.messaging's `rpc_response_timeout = 60` and `heartbeat_timeout_threshold = 60`; no
  dead-peer watch (a dead broker is dropped at Erlang's tick timeout only).
Everything else (fencing, quorum layout, VRRP router ids, buffer sizes) stays as the topology says:
the bench compares timing, not architecture.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hastack.topology.model import Topology, Tuning

Profile = Callable[[Topology], Topology]

REFERENCE: Mapping[str, Mapping[str, Any]] = {
    "keepalived": {"advert_int": 1.0, "rt_priority": 0},
    "haproxy": {"check_inter_ms": 2000, "check_fastinter_ms": 2000, "check_downinter_ms": 2000,
                "check_rise": 2, "check_fall": 5},
    "corosync": {"token": 3000, "dc_deadtime_s": 20},
    "galera": {"evs_suspect_timeout": "PT5S", "evs_inactive_timeout": "PT15S",
               "evs_keepalive_period": "PT1S"},
    "rabbitmq": {"partition_handling": "ignore", "net_ticktime": 60, "rpc_response_timeout": 60,
                 "heartbeat_timeout_s": 60, "dead_peer_after_s": 0},
}


def _retuned(tuning: Tuning, changes: Mapping[str, Mapping[str, Any]]) -> Tuning:
    """Each section re-validated: a typo in a profile fails here, not in a rendered file."""
    sections = {name: type(getattr(tuning, name)).model_validate(
        {**getattr(tuning, name).model_dump(), **values}) for name, values in changes.items()}
    return tuning.model_copy(update=sections)


def hastack(topology: Topology) -> Topology:
    """The topology as written (hastack's defaults plus the operator's own tuning)."""
    return topology


def reference(topology: Topology) -> Topology:
    return topology.model_copy(update={"tuning": _retuned(topology.tuning, REFERENCE)})


PROFILES: Mapping[str, Profile] = {"hastack": hastack, "reference": reference}


def differences(a: Topology, b: Topology) -> list[tuple[str, object, object]]:
    """(tuning.section.field, value in a, value in b) for every field that differs."""
    out = []
    for section in Tuning.model_fields:
        va, vb = getattr(a.tuning, section).model_dump(), getattr(b.tuning, section).model_dump()
        out += [(f"tuning.{section}.{k}", va[k], vb[k]) for k in va if va[k] != vb[k]]
    return out
