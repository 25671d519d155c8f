"""What every rule module shares: the levels by name, and how findings phrase commands and lists."""

from __future__ import annotations

from collections.abc import Sequence

from hastack.status.model import ClusterState, UnitCheck
from hastack.status.verdict import Level

INFO, DEGRADED, DOWN, UNKNOWN = Level.INFO, Level.DEGRADED, Level.DOWN, Level.UNKNOWN


def recover(what: str, s: ClusterState) -> str:
    return f"run `hastack recover {what} {s.topology_file}`"


def listing(items: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def unit_word(u: UnitCheck | None) -> str:
    if u is None or u.state is None:
        return "unit not read"
    st = u.state
    return "not installed" if not st.exists else f"{st.id} {st.active_state}/{st.sub_state}"


