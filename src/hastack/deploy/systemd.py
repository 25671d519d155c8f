"""Unit state on a host: enable, start if stopped, restart if a file it reads changed."""

from __future__ import annotations

from hastack.deploy.engine import Deploy
from hastack.plan.gather import parse_show


async def unit_states(d: Deploy, host: str, units: list[str]) -> dict[str, dict[str, str]]:
    if not units:
        return {}
    res = await d.run(host, ["systemctl", "show", "--no-pager", "-p", "Id,ActiveState,UnitFileState,LoadState",
                             *units], "read unit states")
    return parse_show(res.stdout, units)


async def ensure_running(d: Deploy, host: str, unit: str, *, enable: bool = True, restart: bool = True) -> str:
    """Returns what it did: 'started', 'restarted' or '' (already right)."""
    state = (await unit_states(d, host, [unit])).get(unit, {})
    if enable and state.get("UnitFileState") not in ("enabled", "static", "enabled-runtime", "indirect", "generated"):
        await d.run(host, ["systemctl", "enable", "--quiet", unit], f"enable {unit}")
        d.changed(host, f"enabled {unit}")
    if state.get("ActiveState") != "active":
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


async def ensure_disabled(d: Deploy, host: str, units: list[str]) -> None:
    """Units another manager owns (Pacemaker): never enabled at boot by systemd itself."""
    states = await unit_states(d, host, units)
    for unit in units:
        if states.get(unit, {}).get("UnitFileState") == "enabled":
            await d.run(host, ["systemctl", "disable", "--quiet", unit], f"disable {unit}")
            d.changed(host, f"disabled {unit} (Pacemaker starts it)")
