"""Unit state on a host: enable, start if stopped, restart if a file it reads changed."""

from __future__ import annotations

from hastack.deploy.engine import Deploy
from hastack.facts import UnitState, units


async def unit_states(d: Deploy, host: str, names: list[str]) -> dict[str, UnitState]:
    return await d.fact(host, units(names), "read unit states") if names else {}


async def ensure_units(d: Deploy, host: str, names: list[str], *, enable: bool = True, restart: bool = True,
                       block: bool = True) -> dict[str, str]:
    """Every unit enabled, the stopped ones started, the running ones a changed file marked restarted,
    in a few round trips whatever their number. Returns {unit: 'started' or 'restarted'}.

    block=False (recover) queues the starts (`--no-block`) and leaves alone a unit already on its
    way: right after a power loss a scheduler may exit once on a Keystone that answers 503 and come
    back 5 s later (seen on the seed lab, 2026-12-05), and a blocking start would report that first
    exit as a failure. The gates that follow judge instead."""
    if not names:
        return {}
    states = await unit_states(d, host, names)
    if enable and (disabled := [u for u in names if not states[u].enabled]):
        await d.run(host, ["systemctl", "enable", "--quiet", *disabled], f"enable {' '.join(disabled)}")
        for u in disabled:
            d.changed(host, f"enabled {u}")
    stopped = [u for u in names if not states[u].active
               and (block or states[u].active_state in ("inactive", "failed"))]
    stale = [u for u in names if restart and states[u].active and d.needs_restart(host, u)]
    if stopped:  # a unit at its start limit refuses `start` until its failed state is cleared
        await d.run(host, ["systemctl", "reset-failed", *stopped], "clear failed states", check=False)
    done: dict[str, str] = {}
    for verb, group, why in (("start", stopped, ""), ("restart", stale, " (its configuration changed)")):
        if not group:
            continue
        await d.run(host, ["systemctl", verb, *([] if block else ["--no-block"]), *group],
                    f"{verb} {' '.join(group)}", timeout=600)
        for u in group:
            d.started.setdefault(host, set()).add(u)
            d.changed(host, f"{verb}ed {u}{why}")
            done[u] = f"{verb}ed"
    return done


async def ensure_running(d: Deploy, host: str, unit: str, *, enable: bool = True, restart: bool = True) -> str:
    """One unit: what it did, 'started', 'restarted' or '' (already right)."""
    return (await ensure_units(d, host, [unit], enable=enable, restart=restart)).get(unit, "")


async def ensure_disabled(d: Deploy, host: str, names: list[str]) -> None:
    """Units another manager owns (Pacemaker): never enabled at boot by systemd itself."""
    states = await unit_states(d, host, names)
    for unit in names:
        if states[unit].unit_file_state == "enabled":
            await d.run(host, ["systemctl", "disable", "--quiet", unit], f"disable {unit}")
            d.changed(host, f"disabled {unit} (Pacemaker starts it)")


async def reload_if_changed(d: Deploy, host: str, unit: str) -> bool:
    """`systemctl reload` instead of a restart, for a running unit whose changed files it re-reads on
    reload (HAProxy): the caller knows which changes a reload covers. True if reloaded."""
    if not d.needs_restart(host, unit) or not (await unit_states(d, host, [unit]))[unit].active:
        return False
    await d.run(host, ["systemctl", "reload", unit], f"reload {unit}")
    d.started.setdefault(host, set()).add(unit)
    d.changed(host, f"reloaded {unit} (its configuration changed)")
    return True
