"""Unit state on a host: enable, start if stopped, restart if a file it reads changed."""

from __future__ import annotations

from hastack.deploy.engine import Deploy
from hastack.facts import UnitState, units


async def unit_states(d: Deploy, host: str, names: list[str]) -> dict[str, UnitState]:
    return await d.fact(host, units(names), "read unit states") if names else {}


async def ensure_running(d: Deploy, host: str, unit: str, *, enable: bool = True, restart: bool = True) -> str:
    """Returns what it did: 'started', 'restarted' or '' (already right)."""
    state = (await unit_states(d, host, [unit]))[unit]
    if enable and not state.enabled:
        await d.run(host, ["systemctl", "enable", "--quiet", unit], f"enable {unit}")
        d.changed(host, f"enabled {unit}")
    if not state.active:
        await d.run(host, ["systemctl", "start", unit], f"start {unit}", timeout=300)
        d.started.setdefault(host, set()).add(unit)
        d.changed(host, f"started {unit}")
        return "started"
    if restart and d.needs_restart(host, unit):
        await d.run(host, ["systemctl", "restart", unit], f"restart {unit}", timeout=300)
        d.started.setdefault(host, set()).add(unit)
        d.changed(host, f"restarted {unit} (its configuration changed)")
        return "restarted"
    return ""


async def ensure_disabled(d: Deploy, host: str, names: list[str]) -> None:
    """Units another manager owns (Pacemaker): never enabled at boot by systemd itself."""
    states = await unit_states(d, host, names)
    for unit in names:
        if states[unit].unit_file_state == "enabled":
            await d.run(host, ["systemctl", "disable", "--quiet", unit], f"disable {unit}")
            d.changed(host, f"disabled {unit} (Pacemaker starts it)")
