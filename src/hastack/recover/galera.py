"""Bring a Galera cluster back after every node stopped: pick the one node to bootstrap from.

The rule operators get wrong under pressure: bootstrap the node with the highest committed
position, and only that one. A node's position comes from grastate.dat after a clean stop, from
`mariadbd --wsrep-recover` after a crash (grastate says seqno -1), or from wsrep_last_committed
while it runs without a primary component. The plan is pure (positions in, plan out) so it can
be shown before anything happens, and tested on every case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hastack.facts.galera import NIL_UUID


@dataclass(frozen=True)
class Position:
    node: str
    reachable: bool = True
    running: bool = False
    primary: bool = False
    uuid: str = ""
    seqno: int | None = None
    """None: unknown (not recovered yet, or recovery failed)."""
    safe_to_bootstrap: bool = False
    source: str = ""
    """Where the position comes from: grastate.dat, wsrep-recover, running (wsrep_last_committed)."""
    error: str = ""


@dataclass(frozen=True)
class Joiner:
    node: str
    missing: int | None
    """Write-sets it lacks; None when unknown."""
    transfer: str
    """'none', 'IST' or 'SST'."""
    why: str


@dataclass
class GaleraPlan:
    positions: list[Position]
    action: str = "refuse"
    """'nothing' (a primary component serves; start stopped members), 'bootstrap', or 'refuse'."""
    bootstrap: str | None = None
    reason: str = ""
    joiners: list[Joiner] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)

    def render(self) -> list[str]:
        lines = ["Galera positions:"]
        for p in self.positions:
            where = "unreachable" if not p.reachable else ("running" if p.running else "stopped")
            seq = "unknown" if p.seqno is None else str(p.seqno)
            flag = ", safe_to_bootstrap" if p.safe_to_bootstrap else ""
            prim = ", PRIMARY" if p.primary else ""
            lost = " (named lost)" if p.node in self.lost else ""
            lines.append(f"  {p.node}: {where}{prim}, seqno {seq} ({p.source or p.error or '-'}){flag}{lost}")
        lines.append(f"decision: {self.reason}")
        if self.bootstrap:
            lines.append(f"  1. mark {self.bootstrap} safe_to_bootstrap and start it with a new primary component")
        for i, j in enumerate(self.joiners, start=2 if self.bootstrap else 1):
            lines.append(f"  {i}. start {j.node}, wait for Synced: {j.why}")
        return lines


def ist_or_sst(missing: int | None, gcache_writesets: int | None) -> tuple[str, str]:
    if missing is None:
        return "SST", "its position is unknown: a full copy (SST)"
    if missing == 0:
        return "none", "it has every write-set: it joins with nothing to transfer"
    if gcache_writesets is not None and missing <= gcache_writesets:
        return "IST", f"missing {missing} write-set(s), within the donor's gcache: incremental transfer (IST)"
    return "IST", (f"missing {missing} write-set(s): incremental (IST) if the donor's gcache still holds them "
                   "(gcache.recover=yes keeps it across the restart), else a full copy (SST)")


def plan(positions: list[Position], lost: list[str] | None = None, gcache_writesets: int | None = None
         ) -> GaleraPlan:
    """Positions are in topology order (the tie-break after safe_to_bootstrap)."""
    p = GaleraPlan(positions, lost=list(lost or []))
    alive = [x for x in positions if x.node not in p.lost]
    primary = [x.node for x in alive if x.primary]
    if primary:
        p.action = "nothing"
        p.reason = f"{', '.join(primary)} already in a primary component: no bootstrap; stopped members rejoin"
        p.joiners = [Joiner(x.node, None, "IST", "rejoins the primary component")
                     for x in alive if not x.running]
        return p
    gone = [x.node for x in alive if not x.reachable]
    if gone:
        p.reason = (f"{', '.join(gone)} did not answer: its position could be the highest. Bring it back, or "
                    f"name it lost (--lost {gone[0]}) if it will not return")
        return p
    unknown = [x.node for x in alive if x.seqno is None]
    if unknown:
        p.reason = f"position of {', '.join(unknown)} is unknown ({'; '.join(x.error for x in alive if x.error)})"
        return p
    uuids = {x.uuid for x in alive if x.uuid and x.uuid != NIL_UUID}
    if not uuids:
        p.reason = "no node has ever been in a cluster: this is a new cluster, run `hastack deploy`"
        return p
    if len(uuids) > 1:
        p.reason = f"nodes belong to different clusters ({', '.join(sorted(uuids))}): refusing to choose"
        return p
    return choose(p, alive, gcache_writesets)


def choose(p: GaleraPlan, alive: list[Position], gcache_writesets: int | None) -> GaleraPlan:
    order = {x.node: i for i, x in enumerate(alive)}
    best = max(alive, key=lambda x: (x.seqno or -1, x.safe_to_bootstrap, -order[x.node]))
    top = best.seqno or 0
    others = ", ".join(f"{x.node} {x.seqno}" for x in alive if x is not best)
    tie = [x.node for x in alive if x.seqno == top and x is not best]
    why = f"{best.node} has the highest committed position (seqno {top}; {others or 'no other node'})"
    if tie:
        why += f"; tied with {', '.join(tie)}, " + ("it is the one marked safe_to_bootstrap"
                                                   if best.safe_to_bootstrap else "it comes first in the topology")
    p.action, p.bootstrap, p.reason = "bootstrap", best.node, why
    for x in alive:
        if x is best:
            continue
        missing = None if x.seqno is None else top - x.seqno
        transfer, text = ist_or_sst(missing, gcache_writesets)
        p.joiners.append(Joiner(x.node, missing, transfer, text))
    return p
