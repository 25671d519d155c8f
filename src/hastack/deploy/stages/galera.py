"""Stage 2: Galera. Bootstrap exactly one node, and only when no node has a primary component.

A new cluster is bootstrapped only when every controller is stopped *and* none has ever been
part of a cluster (no grastate.dat with a cluster uuid). A stopped cluster that holds data is
never bootstrapped here: picking the wrong node loses committed writes, so that is
`hastack recover galera`'s job, which compares every node's position first.
"""

from __future__ import annotations

from dataclasses import dataclass

from hastack.components import galera
from hastack.deploy.engine import Deploy, StepFailed
from hastack.deploy.preview import gate, maybe, unit_steps
from hastack.deploy.reads import sql_quote, wait_synced, wsrep
from hastack.deploy.systemd import ensure_running, ensure_units, unit_states
from hastack.facts import GaleraStatus, file_state, grastate
from hastack.facts.galera import NIL_UUID, sql_accounts
from hastack.plan.steps import Step
from hastack.topology.model import Node, Topology

OLD_CHECK_UNIT = "/etc/systemd/system/hastack-galera-check@.service"
"""The per-connection check of before (Accept=yes); the resident one replaced it."""
REMOVE_OLD_CHECK_UNIT = 'test ! -e "$1" || { rm -f "$1" && systemctl daemon-reload && echo removed; }'
REMOVE_TIMERS = ('for t; do f=/etc/systemd/system/$t; test -e "$f" || continue; systemctl disable --now --quiet "$t" '
                 '&& rm -f "$f" && echo "$t"; done; systemctl daemon-reload')
"""The backup timers the topology no longer schedules: stopped, disabled and removed (names on argv)."""


class GaleraStage:
    name = "galera"

    def applies(self, d: Deploy) -> bool:
        return bool(d.topo.controllers)

    async def run(self, d: Deploy) -> None:
        ctls = d.topo.controllers
        states = {n.name: await wsrep(d, n.name) for n in ctls}
        uuids = None if not needs_grastate(states) else await self.uuids(d, ctls)
        decision = choose_seed(d.topo, states, uuids)
        if decision.refuse:
            raise StepFailed(decision.seed, *decision.refuse, code=decision.code)
        seed = decision.seed
        if decision.new:
            await self.bootstrap(d, seed)
        await self.users(d, seed)
        await d.rolling(ctls, lambda n: self.member(d, n))
        await d.each(d.topo.garbd_nodes, lambda n: self.garbd(d, n))
        await d.each(ctls, lambda n: self.check_socket(d, n))
        await self.gate(d)
        await d.each(ctls, lambda n: self.backup_schedule(d, n))

    async def preview(self, d: Deploy) -> list[Step]:
        ctls = d.topo.controllers
        states = {n.name: (await maybe(wsrep(d, n.name))) or GaleraStatus(False, error="no answer")
                  for n in ctls}
        uuids = None if not needs_grastate(states) else await maybe(self.uuids(d, ctls))
        if uuids is None and needs_grastate(states):
            return [Step(self.name, "", "check", "no controller answered: deploy reads grastate.dat on each and "
                                                 "bootstraps only a cluster that never existed")]
        decision = choose_seed(d.topo, states, uuids)
        if decision.refuse:
            return [Step(self.name, decision.seed, "refuse", f"{decision.refuse[0]}: {decision.refuse[1]}",
                         decision.code)]
        out = []
        if decision.new:
            out.append(Step(self.name, decision.seed, "change", "bootstrap a new Galera cluster (galera_new_cluster)"))
            have: frozenset[str] | None = frozenset()
        else:
            have = await maybe(d.fact(decision.seed, sql_accounts(), "list SQL users"))
        if have is None:
            out.append(Step(self.name, decision.seed, "check", "the SST and health-check SQL accounts (created if "
                                                               "missing)"))
        else:
            out += [Step(self.name, decision.seed, "change", f"create SQL user {u.name}")
                    for u in self.accounts() if f"{u.name}@{u.host}" not in have]
        for n in ctls:
            if decision.new and n.name == decision.seed:  # galera_new_cluster started it; `member` enables it
                st = await maybe(unit_states(d, n.name, ["mariadb"]))
                if st is not None and st["mariadb"].exists and not st["mariadb"].enabled:
                    out.append(Step(self.name, n.name, "change", "enable mariadb"))
                continue
            out += await unit_steps(d, self.name, n.name, ["mariadb"], how=", one controller at a time, then wait "
                                    "for Synced" + (" (it joins the new cluster)" if decision.new else ""))
        for n in d.topo.garbd_nodes:
            out += await unit_steps(d, self.name, n.name, ["garbd"])
        for n in ctls:  # check_socket's order: the socket, the old unit's removal, the service's restart
            out += await unit_steps(d, self.name, n.name, [galera.CHECK_SOCKET])
            old = await maybe(d.fact(n.name, file_state([OLD_CHECK_UNIT]), "look for the old check unit"))
            if old is None or old[OLD_CHECK_UNIT].exists:
                out.append(Step(self.name, n.name, "change",
                                f"remove {OLD_CHECK_UNIT}" + ("" if old else " if present")))
            if d.needs_restart(n.name, galera.CHECK_SERVICE):  # only where it runs
                out += await unit_steps(d, self.name, n.name, [galera.CHECK_SERVICE], starts=False)
        out.append(gate(self.name, f"{d.topo.galera_votes} Galera votes in the cluster, every controller Synced"))
        want = galera.backup_timers(d.topo)
        for n in ctls:
            out += await unit_steps(d, self.name, n.name, list(want))
            drop = [t for t in galera.BACKUP_TIMERS.values() if t not in want]
            paths = [f"/etc/systemd/system/{t}" for t in drop]
            there = await maybe(d.fact(n.name, file_state(paths), "look for unscheduled backup timers"))
            out += [Step(self.name, n.name, "change", f"stop, disable and remove {t} (no longer scheduled)"
                         + ("" if there else ", if present"))
                    for t, p in zip(drop, paths, strict=True) if there is None or there[p].exists]
        return out

    async def uuids(self, d: Deploy, ctls: list[Node]) -> dict[str, str]:
        """Each controller's cluster uuid from grastate.dat (the nil uuid when it has none), in
        topology order up to the first that names a cluster: that one already forbids a bootstrap."""
        out = {}
        for n in ctls:
            gs = await d.fact(n.name, grastate(), "read grastate.dat")
            out[n.name] = gs.uuid if gs is not None else NIL_UUID
            if out[n.name] != NIL_UUID:
                break
        return out

    async def bootstrap(self, d: Deploy, seed: str) -> None:
        await d.run(seed, ["galera_new_cluster"], "bootstrap a new Galera cluster", timeout=300)
        d.started.setdefault(seed, set()).add("mariadb")
        d.changed(seed, "bootstrapped a new Galera cluster")
        await wait_synced(d, seed)

    @staticmethod
    def accounts() -> list[galera.DbUser]:
        probe = galera.DbUser(galera.PROBE_USER, "%", galera.PROBE_SECRET, f"ALL PRIVILEGES ON `{galera.PROBE_DB}`.*")
        return [*galera.DB_USERS, probe]

    async def users(self, d: Deploy, host: str) -> None:
        """SST and health-check accounts, created once on one node (Galera replicates them)."""
        have = await d.fact(host, sql_accounts(), "list SQL users")
        for u in self.accounts():
            if f"{u.name}@{u.host}" in have:
                continue
            pw = sql_quote(d.secrets.password(u.secret))
            who = f"{sql_quote(u.name)}@{sql_quote(u.host)}"
            sql = f"CREATE USER {who} IDENTIFIED BY {pw};\nGRANT {u.grants} TO {who};\n"
            if u.name == galera.PROBE_USER:
                sql = f"CREATE DATABASE IF NOT EXISTS `{galera.PROBE_DB}`;\n" + sql
            await d.run(host, ["mariadb"], f"create SQL user {u.name}", stdin=sql.encode())
            d.changed(host, f"created SQL user {u.name}")

    async def member(self, d: Deploy, node: Node) -> None:
        await ensure_running(d, node.name, "mariadb")
        await wait_synced(d, node.name)

    async def garbd(self, d: Deploy, node: Node) -> None:
        await ensure_running(d, node.name, "garbd")

    async def check_socket(self, d: Deploy, node: Node) -> None:
        """The health check's socket running; its resident service, which the socket's first
        connection starts, restarted if its program or settings changed and it runs. The
        per-connection template unit of before is removed (after the socket stopped using it)."""
        await ensure_running(d, node.name, galera.CHECK_SOCKET)
        res = await d.run(node.name, ["sh", "-c", REMOVE_OLD_CHECK_UNIT, "hastack", OLD_CHECK_UNIT],
                          f"remove {OLD_CHECK_UNIT}")
        if res.stdout.strip() == "removed":
            d.changed(node.name, f"removed {OLD_CHECK_UNIT} (the check is one resident service now)")
        if d.needs_restart(node.name, galera.CHECK_SERVICE):
            states = await unit_states(d, node.name, [galera.CHECK_SERVICE])
            if states[galera.CHECK_SERVICE].active:
                await d.run(node.name, ["systemctl", "restart", galera.CHECK_SERVICE],
                            f"restart {galera.CHECK_SERVICE}")
                d.started.setdefault(node.name, set()).add(galera.CHECK_SERVICE)
                d.changed(node.name, f"restarted {galera.CHECK_SERVICE} (its program or settings changed)")

    async def backup_schedule(self, d: Deploy, node: Node) -> None:
        """The topology's backup timers enabled and started (restarted when their schedule changed);
        timers it no longer has stopped and removed."""
        want = galera.backup_timers(d.topo)
        if want:
            await ensure_units(d, node.name, list(want))
        drop = [t for t in galera.BACKUP_TIMERS.values() if t not in want]
        res = await d.run(node.name, ["sh", "-c", REMOVE_TIMERS, "hastack", *drop], "remove unscheduled backup timers")
        for t in res.stdout.split():
            d.changed(node.name, f"removed {t} (the topology no longer schedules it)")

    async def gate(self, d: Deploy) -> None:
        votes = d.topo.galera_votes
        first = d.topo.controllers[0].name

        async def probe() -> tuple[bool, object]:
            size = (await wsrep(d, first)).cluster_size
            return size == votes, f"wsrep_cluster_size={size}, expected {votes}"

        await d.wait(first, "gate: Galera cluster size", probe, what="every Galera vote in the cluster", timeout=120)
        for n in d.topo.controllers:
            if not (await wsrep(d, n.name)).synced:
                raise StepFailed(n.name, "gate: Galera Synced", "node is not Synced in the primary component",
                                 code="GALERA-NOT-SYNCED")


@dataclass(frozen=True)
class Seed:
    """Where Galera's stage starts: the node whose primary component the others join (`new`: a
    cluster bootstrapped there), or why it must not go on (`refuse`: step and what to do)."""

    seed: str
    new: bool = False
    refuse: tuple[str, str] | None = None
    code: str = ""
    """The refusal's code: GALERA-STRANGER, GALERA-NO-PRIMARY or GALERA-HAS-DATA."""


def needs_grastate(states: dict[str, GaleraStatus]) -> bool:
    """Only a cluster with no node answering at all may be new: then grastate.dat decides."""
    return not any(s.primary or s.available for s in states.values())


def choose_seed(topo: Topology, states: dict[str, GaleraStatus], uuids: dict[str, str] | None) -> Seed:
    """The decision the stage's run and its preview share. A new cluster is bootstrapped only when
    every controller is stopped and none was ever in a cluster; a node of the cluster the topology
    does not list stops the stage (see `strangers`)."""
    primary = [h for h, s in states.items() if s.primary]
    if primary:
        seed = primary[0]
        if odd := strangers(topo, states[seed]):
            return Seed(seed, code="GALERA-STRANGER", refuse=(
                "compare the Galera members with the topology",
                f"{', '.join(odd)} still run(s) MariaDB in the cluster but the topology does not list that "
                "address: stop MariaDB there (it leaves the cluster cleanly) or put the node back in the topology "
                "and take it out with `hastack retire NODE`, then deploy again"))
        return Seed(seed)
    running = [h for h, s in states.items() if s.available]
    if running:
        return Seed(running[0], code="GALERA-NO-PRIMARY", refuse=(
            "find the primary component", "MariaDB runs but no node is in a primary component; run `hastack recover "
                                          "galera`"))
    for name, uuid in (uuids or {}).items():
        if uuid != NIL_UUID:
            return Seed(name, code="GALERA-HAS-DATA", refuse=("bootstrap Galera",
                                      f"every controller is stopped but {name} was in cluster {uuid}: bootstrapping "
                                      "a new one here could lose writes; run `hastack recover galera`"))
    return Seed(topo.controllers[0].name, new=True)


def strangers(topo: Topology, seed: GaleraStatus) -> list[str]:
    """Members of the cluster the topology does not list. A node the topology no longer lists but
    that still runs in the cluster would keep a vote nobody deploys or watches: the stage stops
    before anything changes. The members are read from `wsrep_incoming_addresses` (the client
    address of every MariaDB member; garbd has none). A dead node has already left the cluster's
    view: nothing to do for it."""
    ours = {str(n.address) for n in topo.controllers}
    return [a for a in seed.incoming_hosts if a not in ours]
