"""The lab: the topology as real Debian hosts (systemd-nspawn containers) on this machine.

Entry points: `Lab` (up/down, power, cuts, freeze, run), `LabError`, `labs()`, and, for offline
config checks, `hastack.lab.image.ensure_image()` / `run_in_image()`.

Imports are lazy so `python -m hastack.lab.<module>` (the daemons and helpers the lab starts)
loads only what it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hastack.lab.errors import LabError
    from hastack.lab.lab import Lab, labs

__all__ = ["Lab", "LabError", "labs"]


def __getattr__(name: str) -> Any:
    if name == "LabError":
        from hastack.lab.errors import LabError

        return LabError
    if name in ("Lab", "labs"):
        from hastack.lab import lab

        return getattr(lab, name)
    raise AttributeError(name)
