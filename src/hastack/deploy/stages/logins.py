"""Stage 7, only while a rotation of service logins is under way (`hastack rotate-secrets`, the
model in `components/logins.py`): the previous logins removed from MariaDB, RabbitMQ and Keystone.

It runs last, after every stage restarted the services whose files changed (the controllers' in the
openstack stage, the network nodes' agents through Pacemaker), so every copy of every service runs
with its new login. Checked rather than assumed: a previous SQL or RabbitMQ login that still has a
session anywhere is a service hastack did not restart (or a client of the operator's), and the stage
stops there and names where it comes from, with the previous login still working. Keystone cannot
say who holds a token; its previous users go with the rest.

Order: the stores first, then the secrets file forgets the previous logins (saved at once), then the
brokers' definitions file is written without them (it is what a broker loads at boot). Interrupted
anywhere, the next deploy runs this stage again: each removal tolerates a login already gone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from hastack.components import haproxy, logins, rabbitmq
from hastack.components import openstack as os_
from hastack.components.base import Ctx
from hastack.deploy.engine import Deploy, StepFailed, put_file
from hastack.deploy.reads import sql_quote
from hastack.deploy.services import admin, auth_spec, first
from hastack.facts.galera import sql_rows
from hastack.facts.rabbitmq import connections, users
from hastack.plan.steps import Step
from hastack.topology.model import Topology


@dataclass(frozen=True)
class Principal:
    """One login of one service: kind (db, rabbit, keystone) and base name (`nova`)."""

    kind: logins.Kind
    base: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.base}"


def principals(topo: Topology, services: list[str] | None = None) -> list[Principal]:
    """Every service login this topology has (or only those of `services`), in topology order."""
    chosen = [s for s in topo.openstack.services if not services or s in services]
    out: list[Principal] = []
    for s in chosen:
        out += [Principal("db", u) for u in dict.fromkeys(db.user for db in os_.DATABASES[s])]
        if s in rabbitmq.messaging_services(topo):
            out.append(Principal("rabbit", s))
        out += [Principal("keystone", u) for u in os_.SERVICE_USERS[s]]
    return list(dict.fromkeys(out))


def under_way(ctx: Ctx) -> list[tuple[Principal, logins.Login]]:
    """The logins whose rotation is not finished, with the previous login of each."""
    out = []
    for p in principals(ctx.topo):
        prev = logins.previous(ctx.secrets, p.kind, p.base)
        if prev is not None:
            out.append((p, prev))
    return out


SESSIONS_WAIT_S = 120.0
"""How long the stage waits for the previous SQL logins' sessions to end before it stops. A restarted
service's end at once; one reaching MariaDB through a HAProxy whose client died without a FIN (a
controller powered off) ends when that HAProxy's keepalive probes give up (clitcpka: 30 s idle + 3 x
10 s). Seen once in the lab: two such sessions still listed when the stage ran, 2026-12-06."""
SESSIONS_POLL_S = 5.0


class LoginsStage:
    name = "logins"

    def applies(self, d: Deploy) -> bool:
        return bool(under_way(Ctx(d.topo, d.secrets)))

    async def preview(self, d: Deploy) -> list[Step]:
        rotating = under_way(Ctx(d.topo, d.secrets))
        return [Step(self.name, first(d), "change", f"retire the previous {p.kind} login {prev.user} (its service "
                                                    "uses its new one; waits until no session uses it)")
                for p, prev in rotating]

    async def run(self, d: Deploy) -> None:
        ctx = Ctx(d.topo, d.secrets)
        rotating = under_way(ctx)
        old = {kind: sorted({prev.user for p, prev in rotating if p.kind == kind}) for kind in logins.KINDS}
        host = first(d)
        if old["db"]:
            await self.retire_sql(d, old["db"])
        if old["rabbit"]:
            await self.retire_rabbit(d, old["rabbit"])
        if old["keystone"]:
            spec = {**auth_spec(d), "users": [{"name": u, "domain": os_.DOMAIN} for u in old["keystone"]]}
            answer = await admin(d, host, "retire", spec, "remove the previous Keystone service users", timeout=180)
            for name in answer.get("removed", []):
                d.changed(host, f"removed Keystone user {name} (its service logs in as its new user)")
        for p, _ in rotating:
            logins.finish(d.secrets, p.kind, p.base)
        d.secrets.save()
        for n in d.topo.brokers:  # the definitions a broker loads at boot, without the previous users
            defs = next(f for f in rabbitmq.COMPONENT.files(ctx, n) if f.path == rabbitmq.DEFINITIONS)
            await put_file(d.transports[n.name], defs)
        d.info(host, f"rotation finished: {len(rotating)} login(s) now only as their new user")

    async def retire_sql(self, d: Deploy, names: list[str]) -> None:
        quoted = ", ".join(sql_quote(u) for u in names)
        step = "check that no session uses a previous SQL login"
        query = sql_rows(f"SELECT ID, USER, HOST FROM information_schema.PROCESSLIST WHERE USER IN ({quoted})")
        live: dict[str, list[tuple[str, ...]]] = {}

        async def none_left() -> tuple[bool, object]:
            live.clear()
            for n in d.topo.controllers:
                rows = await d.fact(n.name, query, step)
                ghosts = [r for r in rows if from_departed(d.topo, r[2])]
                if rest := [r[1:] for r in rows if r not in ghosts]:
                    live[n.name] = rest
                if ghosts:  # a dead host's sessions: no FIN ever came, the server still lists them
                    await d.run(n.name, ["mariadb"], "end the sessions of hosts no longer in the topology",
                                stdin="".join(f"KILL CONNECTION {int(r[0])};\n" for r in ghosts).encode(),
                                check=False)
                    d.changed(n.name, f"ended {len(ghosts)} session(s) left by hosts no longer in the topology "
                                      f"({', '.join(sorted({r[2].rsplit(':', 1)[0] for r in ghosts}))})")
            return not live, in_use([r for rows in live.values() for r in rows]) if live else "none"

        try:
            await d.wait(first(d), step, none_left, what="no session of a previous SQL login", timeout=SESSIONS_WAIT_S,
                         interval=SESSIONS_POLL_S)
        except StepFailed:
            if not live:
                raise
            raise StepFailed(next(iter(live)), step, in_use([r for rows in live.values() for r in rows]),
                             code="LOGIN-STILL-IN-USE") from None
        host = first(d)
        drop = "".join(f"DROP USER IF EXISTS {sql_quote(u)}@'%';\n" for u in names)
        await d.run(host, ["mariadb"], "remove the previous SQL logins", stdin=drop.encode())
        d.changed(host, f"removed SQL user(s) {', '.join(names)} (their services log in as their new users)")

    async def retire_rabbit(self, d: Deploy, names: list[str]) -> None:
        host = d.topo.brokers[0].name
        step = "check that no connection uses a previous RabbitMQ login"
        rows = [(u, peer) for u, peer in await d.fact(host, connections(), step)
                if u in names and not from_departed(d.topo, peer)]  # a dead host's: its heartbeats end it
        if rows:
            raise StepFailed(host, step, in_use(rows), code="LOGIN-STILL-IN-USE")
        have = await d.fact(host, users(), "list RabbitMQ users")
        for u in names:
            if u in have:
                await d.run(host, ["rabbitmqctl", "-q", "delete_user", u], f"remove RabbitMQ user {u}")
                d.changed(host, f"removed RabbitMQ user {u} (its service logs in as its new user)")


def from_departed(topo: Topology, client: str) -> bool:
    """A session's client (`address` or `address:port`) is an IP address that no node of the topology
    and no VIP has: a host that left (a replaced controller powered off for good)."""
    host = client.rsplit(":", 1)[0] if client.count(":") == 1 else client
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a name (localhost): a live local client
    known = {str(n.address) for n in topo.nodes} | set(haproxy.vips(topo, public=True))
    return not address.is_loopback and str(address) not in known


def in_use(rows: Sequence[tuple[str, ...]]) -> str:
    where = sorted({f"{r[0]} from {r[1]}" for r in rows})
    return (f"{len(rows)} session(s) still use a login the rotation is retiring ({'; '.join(where[:10])}): "
            "a service hastack did not restart, or a client of yours. Restart it with its new configuration "
            "(or stop that client), then run `hastack deploy` again: it finishes the rotation. Nothing was "
            "removed; the previous logins still work.")
