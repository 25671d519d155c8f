"""Structured hostile topologies (issue #14), shared by the unit tier (load and render: no injected
line, no traceback) and the image tier (the accepted ones through the real checkers).

Every string field that reaches a file is drawn either from its model pattern (yet full of syntax:
quotes, `#`, backslashes, braces) or, in one part of four, from anything at all."""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st

HOSTILE = st.text(alphabet=st.sampled_from(list(string.printable) + ["\x00", "\x1b", "\u2028", "\u00e9", "\x85"]),
                  max_size=20)
TRICKY = st.text(alphabet=st.sampled_from(string.printable[:-5]), max_size=20)
"""Printable ASCII: what the model allows in a fence value or a reason, quotes, '#' and backslashes included."""


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Three parts valid (yet syntax-laden), one part hostile: each example is a mix, and enough
    of them load to exercise the renderers."""
    return st.one_of(valid, valid, valid, HOSTILE)


VALID_IFACE = st.from_regex(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,14}", fullmatch=True).filter(
    lambda n: n not in (".", "..", "all", "default", "lo"))
VALID_USER = st.from_regex(r"[a-z_][a-z0-9_-]{0,8}", fullmatch=True)
VALID_KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
VALID_VALUES = st.one_of(TRICKY, st.integers(-(2**40), 2**40), st.booleans())
IFACE = mostly(VALID_IFACE)
USER = mostly(VALID_USER)
KEYS = mostly(VALID_KEYS)
VALUES = st.one_of(mostly(TRICKY), st.integers(-(2**40), 2**40), st.booleans())


def topology(interface: str, public: str, user: str, params: dict[str, Any], reason: str) -> dict[str, Any]:
    """Three controllers (c3 the arbitrator), two fenced network nodes, a public VIP."""
    return {
        "name": "h", "network": {"management": "10.0.0.0/24", "vip": "10.0.0.10", "interface": interface,
                                 "public": {"cidr": "192.0.2.0/24", "vip": "192.0.2.10", "interface": public}},
        "ssh": {"user": user},
        "fencing": {"enabled": True, "reason": reason},
        "nodes": [{"name": f"c{i}", "address": f"10.0.0.1{i}", "roles": ["controller"]} for i in (1, 2)]
        + [{"name": "c3", "address": "10.0.0.13", "roles": ["controller", "arbitrator"]}]
        + [{"name": f"n{i}", "address": f"10.0.0.2{i}", "roles": ["network"],
            "fencing": {"agent": "fence_ipmilan", "params": params}} for i in (1, 2)],
        "openstack": {"services": ["keystone", "neutron"]},
    }


def crm_text(value: str | int | bool) -> str:
    """How a fence parameter's value reads in the CIB."""
    return ("1" if value else "0") if isinstance(value, bool) else str(value)
