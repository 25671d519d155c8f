"""Stage 5: every OpenStack service of the topology, brought up in dependency order and gated healthy.

Order, and why:
1. databases, accounts and grants (SQL on stdin to `mariadb` as root on the first controller;
   Galera replicates them) - only what is missing, so a re-run reads and writes nothing;
2. Keystone's key directories 0700 keystone:keystone (the files stage writes the keys, and its
   `put` creates missing parent directories 0755);
3. schemas, on the first controller, as each service's own user - only for a service whose
   database is empty or whose package version differs from the stamp left by the last sync
   (`/var/lib/hastack/schema-<service>`). db sync commands are idempotent but slow (nova's alone
   takes tens of seconds of CPU); their migrations change only with the code, i.e. the package
   version, and an empty database (first deploy, or a database re-created) always syncs;
   then Nova's cell mappings kept as `os_.CELL0_DB` says (templates; cell1's transport URL that of
   nova.conf), Nova restarted when one changed;
4. Keystone on every controller, one at a time, each gated on its own address (each API drained
   from HAProxy around its restart: `deploy/drain.py`); then
   `keystone-manage bootstrap` once, and only when the admin user cannot get a token;
5. projects, roles, users, grants and the catalog, from ONE Python process on the first
   controller (`agents/openstack_admin.py`; the CLI costs ~1.6 s per call);
6. every other service, controller by controller (a controller's cold start is ~65 CPU-s on a
   2-core lab: starting all of them at once starves Galera, RabbitMQ and corosync), each gated on
   its APIs answering on the node's own address, then through HAProxy on the VIP; then the L2
   agents of the network nodes, then the computes, then `nova-manage cell_v2 discover_hosts`.
   With telemetry, each controller's Gnocchi storage is initialised before its APIs start, and
   ceilometer's resource types are created in Gnocchi (first controller, once per version) after
   the APIs answer and before ceilometer's agents start;
7. gate through the VIP: a token; nova's scheduler and conductor on every controller and
   nova-compute on every compute up; the L2 agents alive; cinder's scheduler and heat's engine up;
8. the service rows of hosts the topology no longer lists (a replaced controller's scheduler and
   conductor, a removed compute's nova-compute and L2 agent) deleted once they are down: Nova and
   Neutron rows through their APIs, Cinder's by `cinder-manage service remove`, Heat's engines by
   `heat-manage service clean`. A row that is still up is named, never deleted.
The network nodes' L3/DHCP/metadata agents come with the Pacemaker group in the next stage, whose
gate calls `network_agents_gate` here.

Secrets never travel in an argv: SQL, the bootstrap password and the admin spec go on stdin.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from hastack.components import api_watchdog, haproxy, keystone, rabbitmq, telemetry
from hastack.components import openstack as os_
from hastack.components.base import Ctx
from hastack.deploy.drain import out_of_rotation
from hastack.deploy.engine import Deploy, StepFailed
from hastack.deploy.preview import gate, maybe, maybe_get, unit_steps
from hastack.deploy.reads import sql_quote
from hastack.deploy.services import (
    admin,
    api_gate,
    api_urls,
    auth_spec,
    cluster_expectations,
    expectations,
    first,
    service_units,
    vip_api_urls,
    wait_http,
)
from hastack.deploy.stages.openstack_sql import accounts, changes, identity_spec, read_sql
from hastack.deploy.systemd import ensure_running, ensure_units
from hastack.facts import FileState, Package, file_state, packages
from hastack.facts.galera import sql_rows, table_counts
from hastack.plan.steps import Step
from hastack.topology.model import Node, ServiceName

STAMP_DIR = "/var/lib/hastack"

SCHEMA_PACKAGES: dict[ServiceName, tuple[str, ...]] = {
    "keystone": ("python3-keystone",),
    "glance": ("python3-glance",),
    "placement": ("python3-placement",),
    "nova": ("python3-nova",),
    "neutron": ("python3-neutron",),
    "cinder": ("python3-cinder",),
    "heat": ("python3-heat",),
    "telemetry": ("python3-gnocchi", "python3-aodh"),
}
"""Where each service's migrations live: a new version of these may bring new ones."""

KEY_DIRS = (keystone.FERNET_DIR, keystone.CREDENTIAL_DIR)

TOKEN_REQUEST = ("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                 "-H", "Content-Type: application/json", "--data-binary", "@-")
"""POST of a token request read from stdin (the password never shows in argv)."""

def version_stamp(pkgs: Mapping[str, Package], names: Sequence[str]) -> bytes:
    """What a stamp file under STAMP_DIR holds: `pkg=version` of each package whose code made the
    state it stands for (a schema, Gnocchi's resource types), so a new version runs the step again."""
    return (" ".join(f"{p}={pkgs[p].version}" for p in names) + "\n").encode()


def schema_due(svc: ServiceName, tables: Mapping[str, int], version: bytes, stamp: bytes | None) -> str:
    """Why a service's schema is synced now ('' when it is not): an empty database, or a package
    version other than the one the last sync stamped."""
    if empty := [db.name for db in os_.DATABASES[svc] if not tables.get(db.name)]:
        return f"empty database {', '.join(empty)}"
    return "" if stamp == version else "package version changed"


def key_dir_right(s: FileState) -> bool:
    return (s.exists, s.kind, s.owner, s.group, s.mode) == (True, "directory", "keystone", "keystone", 0o700)


def ctx_of(d: Deploy) -> Ctx:
    return Ctx(d.topo, d.secrets)


class OpenStackStage:
    name = "openstack"

    def applies(self, d: Deploy) -> bool:
        return bool(d.topo.controllers) and d.topo.runs("keystone")

    async def run(self, d: Deploy) -> None:
        host = first(d)
        ctls = d.topo.controllers
        await self.databases(d, host)
        await d.each(ctls, lambda n: self.key_dirs(d, n))
        await self.schemas(d, host)
        await self.cell_mappings(d, host)
        await self.agent_watch_account(d, host)
        await d.rolling(ctls, lambda n: self.keystone(d, n))
        await wait_http(d, host, [(d.topo.vip_url(os_.KEYSTONE_PORT, "/v3"), 200)],
                        "Keystone through the VIP")
        await self.bootstrap(d, host)
        await self.identity(d, host)
        await d.rolling(ctls, lambda n: self.controller(d, n))
        await wait_http(d, host, vip_api_urls(d.topo), "every API through HAProxy on the VIP")
        others = [n for n in d.topo.network_nodes if not n.has("controller")]
        await d.rolling(others, lambda n: self.agent_node(d, n))
        await d.rolling([n for n in d.topo.computes if not n.has("controller")], lambda n: self.agent_node(d, n))
        await self.discover_hosts(d, host)
        await api_gate(d, expectations(d.topo), "every service up through the VIP")
        await self.forget_departed(d, host)

    async def preview(self, d: Deploy) -> list[Step]:
        host = first(d)
        ctls = d.topo.controllers
        one = ", one controller at a time"
        acc = accounts(d.topo, d.secrets)
        rows = await maybe(d.run(host, ["mariadb", "--batch", "--skip-column-names"], "read databases and SQL users",
                                 stdin=read_sql(acc).encode()))
        out = [Step(self.name, host, "change", c.todo) for c in changes(acc, rows.stdout)] if rows else [
            Step(self.name, host, "check", "databases, SQL users and grants: created where missing (MariaDB does not "
                                           "answer now)")]
        for n in ctls:
            states = await maybe(d.fact(n.name, file_state(list(KEY_DIRS)), "read Keystone key directories"))
            out += [Step(self.name, n.name, "change", f"{path} 0700 keystone:keystone") for path in KEY_DIRS
                    if states is None or not key_dir_right(states[path])]
        out += await self.schemas_preview(d, host)
        if d.topo.runs("nova"):
            out.append(Step(self.name, host, "check", "Nova's cell mappings follow nova.conf (updated, and Nova "
                                                      "restarted on every controller, when one differs)"))
        if any(api_watchdog.agent_guards(d.topo, n)[1] for n in d.topo.network_nodes):
            out.append(Step(self.name, host, "check", f"the account {api_watchdog.WATCH_USER} with SELECT on three "
                                                      "columns of neutron.agents (written when it differs)"))
        for n in ctls:
            out += await unit_steps(d, self.name, n.name, [keystone.UNIT],
                                    how=one + " (out of HAProxy's rotation while it restarts)")
        out += [gate(self.name, "Keystone through the VIP"),
                Step(self.name, host, "check", "keystone-manage bootstrap, only if the admin user gets no token"),
                Step(self.name, host, "check", "projects, roles, service users and the catalog, every endpoint the "
                                               "VIP (agents/openstack_admin.py: changes only what differs)")]
        served = {a.unit for a in haproxy.apis(d.topo)}
        for n in ctls:
            units = service_units(d.topo, n, skip=("keystone",))
            if d.topo.runs("telemetry"):
                out += await self.telemetry_preview(d, n)
            out += await unit_steps(d, self.name, n.name, [u for u in units if u in served],
                                    how=one + ", APIs first (out of HAProxy's rotation while they restart)")
            if d.topo.runs("telemetry") and n.name == host:
                out.append(Step(self.name, host, "check", "ceilometer's resource types in Gnocchi (created once per "
                                                          "ceilometer version, before its agents start)"))
            out += await unit_steps(d, self.name, n.name, [u for u in units if u not in served],
                                    how=one + ", after its APIs answer through the VIP")
            if api_watchdog.COMPONENT.applies(d.topo, n):
                out += await unit_steps(d, self.name, n.name, [api_watchdog.UNIT])
        out.append(gate(self.name, "every API through HAProxy on the VIP"))
        for n in [*(n for n in d.topo.network_nodes if not n.has("controller")),
                  *(n for n in d.topo.computes if not n.has("controller"))]:
            out += await unit_steps(d, self.name, n.name, service_units(d.topo, n),
                                    how=", one node at a time, then its services up")
        if d.topo.computes and d.topo.runs("nova"):
            out.append(Step(self.name, host, "check", "every compute mapped to its cell (discover_hosts when one is "
                                                      "not)"))
        return [*out, gate(self.name, "every service up through the VIP"),
                Step(self.name, host, "check", "the service rows of hosts the topology no longer lists (deleted "
                                               "once they are down)")]

    async def telemetry_preview(self, d: Deploy, node: Node) -> list[Step]:
        """`gnocchi_storage` on a controller, before its APIs (see `controller`)."""
        marker = telemetry.STORAGE_MARKER
        have = await maybe(d.fact(node.name, file_state([marker]), "look for Gnocchi's storage"))
        if have is not None and not have[marker].exists:
            return [Step(self.name, node.name, "change", f"initialise Gnocchi's storage in {telemetry.STORAGE_DIR}")]
        return [] if have is not None else [Step(self.name, node.name, "check", "Gnocchi's storage initialised "
                                                                               "if it is not (cannot read it now)")]

    async def schemas_preview(self, d: Deploy, host: str) -> list[Step]:
        services = list(dict.fromkeys(s.service for s in os_.db_sync_steps(d.topo)))
        if not services:
            return []
        tables = await maybe(d.fact(host, table_counts(), "count tables per database"))
        pkgs = await maybe(d.fact(host, packages([p for s in services for p in SCHEMA_PACKAGES[s]]),
                                  "read package versions"))
        if tables is None or pkgs is None:
            return [Step(self.name, host, "check", f"{svc} schema: synced if its database is empty or its package "
                                                   "version changed (cannot read them now)") for svc in services]
        out = []
        for svc in services:
            if why := schema_due(svc, tables, version_stamp(pkgs, SCHEMA_PACKAGES[svc]),
                                 await maybe_get(d, host, f"{STAMP_DIR}/schema-{svc}")):
                out.append(Step(self.name, host, "change", f"sync the {svc} schema ({why})"))
        return out

    # -- 8. rows of hosts the topology no longer lists -------------------------------------------
    async def forget_departed(self, d: Deploy, host: str) -> None:
        keep = [e.spec() for e in expectations(d.topo) + cluster_expectations(d.topo)]
        if not keep:
            return
        step = "remove the service rows of hosts the topology no longer lists"
        answer = await admin(d, host, "prune", {**auth_spec(d), "keep": keep}, step, timeout=180)
        for what in answer.get("removed", []):
            d.changed(host, f"deleted the service row {what} (its host is no longer in the topology)")
        cinder_stale = [(b, h) for svc, b, h in answer.get("stale", []) if svc == "volumev3"]
        heat_stale = [(b, h) for svc, b, h in answer.get("stale", []) if svc == "orchestration"]
        for binary, h in cinder_stale:
            await d.run(host, ["cinder-manage", "service", "remove", binary, h], f"forget {binary} on {h}")
            d.changed(host, f"removed the service row {binary}@{h} (its host is no longer in the topology)")
        if heat_stale:
            await d.run(host, ["heat-manage", "service", "clean"], "remove Heat's dead engines")
            d.changed(host, f"removed Heat's dead engine rows ({', '.join(h for _, h in heat_stale)})")
        for what in answer.get("alive", []):
            d.info(host, f"{what} is up although its host is not in the topology: stop it there; "
                         "deploy removes its row once it is down")

    # -- 1. databases --------------------------------------------------------------------------
    async def databases(self, d: Deploy, host: str) -> None:
        """Databases, accounts and grants: read in one round trip, and only what differs written
        (`openstack_sql.changes`)."""
        a = accounts(d.topo, d.secrets)
        res = await d.run(host, ["mariadb", "--batch", "--skip-column-names"], "read databases and SQL users",
                          stdin=read_sql(a).encode())
        todo = changes(a, res.stdout)
        if not todo:
            return
        await d.run(host, ["mariadb"], "create databases, SQL users and grants",
                    stdin="\n".join(c.sql for c in todo).encode())
        for c in todo:
            d.changed(host, c.done)

    # -- 2. keystone's key directories ---------------------------------------------------------
    async def key_dirs(self, d: Deploy, node: Node) -> None:
        states = await d.fact(node.name, file_state(list(KEY_DIRS)), "read Keystone key directories")
        for path in KEY_DIRS:
            if key_dir_right(states[path]):
                continue
            await d.run(node.name, ["install", "-d", "-o", "keystone", "-g", "keystone", "-m", "0700", path],
                        f"directory {path}")
            d.changed(node.name, f"{path} is 0700 keystone:keystone")

    # -- 3. schemas ------------------------------------------------------------------------------
    async def schemas(self, d: Deploy, host: str) -> None:
        steps = os_.db_sync_steps(d.topo)
        services = list(dict.fromkeys(s.service for s in steps))
        if not services:
            return
        tables = await d.fact(host, table_counts(), "count tables per database")
        names = [p for s in services for p in SCHEMA_PACKAGES[s]]
        pkgs = await d.fact(host, packages(names), "read package versions")
        t = d.transports[host]
        for svc in services:
            version = version_stamp(pkgs, SCHEMA_PACKAGES[svc])
            stamp_path = f"{STAMP_DIR}/schema-{svc}"
            why = schema_due(svc, tables, version, await t.get(stamp_path))
            if not why:
                continue
            for step in (s for s in steps if s.service == svc):
                d.checkpoint()
                label = f"{svc} schema: {' '.join(step.argv[:3])}"
                r = await d.run(host, ["runuser", "-u", step.user, "--", *step.argv], label, timeout=1200,
                                check=False)
                if r.exit_status not in step.ok_codes:
                    raise StepFailed(host, label, f"exit code {r.exit_status} is not one of {step.ok_codes}", r)
            await t.put(stamp_path, version, owner="root", group="root", mode=0o644)
            d.changed(host, f"synced the {svc} schema ({why})")

    async def cell_mappings(self, d: Deploy, host: str) -> None:
        """Nova's cell mappings as `os_.CELL0_DB` says: cell0 and cell1 databases as templates, cell1's
        transport URL that of nova.conf (its login and every broker). A mapping that differs is
        updated from nova.conf on this host (the password never in argv), and Nova's units on every
        controller restart (rolling, with the others): a running Nova process keeps the connections
        it made from the mapping it read, which stay valid until a rotation retires their login."""
        if not d.topo.runs("nova"):
            return
        want = {"cell0": (os_.CELL0_DB, "none:///"),
                "cell1": (os_.CELL1_DB, rabbitmq.transport_url(ctx_of(d), "nova"))}
        rows = await d.fact(host, sql_rows("SELECT uuid, name, database_connection, transport_url "
                                           "FROM nova_api.cell_mappings"), "read Nova's cell mappings")
        stale = [(uuid, name) for uuid, name, *urls in rows if name in want and tuple(urls) != want[name]]
        for uuid, name in stale:
            argv = ["nova-manage", "cell_v2", "update_cell", "--cell_uuid", uuid,
                    "--database_connection", want[name][0]]
            if name == "cell0":
                argv += ["--transport-url", want[name][1]]
            await d.run(host, ["runuser", "-u", "nova", "--", *argv], f"update Nova's {name} mapping", timeout=300)
            d.changed(host, f"Nova's {name} mapping follows nova.conf (its database login and brokers)")
        if stale:
            for n in d.topo.controllers:
                d.restarts.setdefault(n.name, set()).update(
                    u for u in service_units(d.topo, n) if u.startswith("nova-"))

    async def agent_watch_account(self, d: Deploy, host: str) -> None:
        """The network nodes' watchdog reads the agents' heartbeats as Neutron recorded them: its own
        account, with a column grant (a table grant needs the table: after the schema sync). Checked
        in one read: the account, its password and its three columns; written only when one differs."""
        if not any(api_watchdog.agent_guards(d.topo, n)[1] for n in d.topo.network_nodes):
            return
        pw = d.secrets.password(api_watchdog.WATCH_SECRET)
        user = sql_quote(api_watchdog.WATCH_USER)
        read = (f"SELECT 'watch', IF(authentication_string <> PASSWORD({sql_quote(pw)}), 'stale', 'ok') "
                f"FROM mysql.user WHERE User = {user} AND Host = '%';\n"
                f"SELECT 'columns', COUNT(*) FROM mysql.columns_priv WHERE User = {user} AND Host = '%' "
                "AND Db = 'neutron' AND Table_name = 'agents' AND FIND_IN_SET('Select', Column_priv);\n")
        res = await d.run(host, ["mariadb", "--batch", "--skip-column-names"], "read the agent watch account",
                          stdin=read.encode())
        rows = dict(line.split("\t", 1) for line in res.stdout.splitlines() if "\t" in line)
        if rows == {"watch": "ok", "columns": str(len(api_watchdog.WATCH_COLUMNS))}:
            return
        await d.run(host, ["mariadb"], "create the agent watch account",
                    stdin=api_watchdog.watch_grant_sql(pw).encode())
        d.changed(host, f"granted {api_watchdog.WATCH_USER} SELECT on three columns of neutron.agents")

    # -- 4. keystone -----------------------------------------------------------------------------
    async def keystone(self, d: Deploy, node: Node) -> None:
        async with out_of_rotation(d, node, [u for u in [keystone.UNIT] if d.needs_restart(node.name, u)]):
            await ensure_running(d, node.name, keystone.UNIT)
            await wait_http(d, node.name, [(f"http://{node.address}:{os_.KEYSTONE_PORT}/v3", 200)],
                            f"Keystone on {node.name}")

    async def admin_token(self, d: Deploy, host: str) -> str:
        """HTTP status of an admin token request through the VIP: 201 yes, 401 no such admin."""
        body = keystone.password_auth("admin", d.secrets.password(keystone.ADMIN_SECRET), "admin")
        url = d.topo.vip_url(os_.KEYSTONE_PORT, "/v3/auth/tokens")

        async def probe() -> tuple[bool, object]:
            res = await d.run(host, [*TOKEN_REQUEST, url], "ask for an admin token", stdin=json.dumps(body).encode(),
                              check=False)
            return res.stdout.strip() in ("201", "401"), res.stdout.strip() or f"curl exit {res.exit_status}"

        return str(await d.wait(host, "ask for an admin token", probe, what="Keystone to answer a token request",
                                timeout=120, interval=2))

    async def bootstrap(self, d: Deploy, host: str) -> None:
        if await self.admin_token(d, host) == "201":
            return
        argv, env = keystone.bootstrap(ctx_of(d))
        names = sorted(env)
        for n in names:
            if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", n):
                raise ValueError(f"unexpected environment name {n!r}")
        # The values are read from stdin into the environment: argv (visible in ps) never has them.
        reader = "".join(f"read -r {n} && export {n} && " for n in names) + 'exec "$@"'
        await d.run(host, ["sh", "-c", reader, "sh", "runuser", "-u", "keystone", "--", *argv],
                    "keystone-manage bootstrap", stdin="".join(f"{env[n]}\n" for n in names).encode(), timeout=300)
        if await self.admin_token(d, host) != "201":
            raise StepFailed(host, "keystone-manage bootstrap", "the admin user still gets no token",
                             code="KEYSTONE-ADMIN-NO-TOKEN")
        d.changed(host, "bootstrapped Keystone: admin user, project and roles, identity endpoints")

    # -- 5. projects, users, catalog -------------------------------------------------------------
    async def identity(self, d: Deploy, host: str) -> None:
        spec = identity_spec(d.topo, d.secrets, auth_spec(d))
        answer = await admin(d, host, "setup", spec, "projects, users, roles and the catalog",
                             timeout=300)
        for msg in answer.get("changed", []):
            d.changed(host, str(msg))

    # -- 6. services -----------------------------------------------------------------------------
    async def controller(self, d: Deploy, node: Node) -> None:
        """The node's APIs first, gated on their own address and then through the VIP; only then the
        daemons. nova-conductor and nova-scheduler ask Placement through the VIP as they start and
        exit when it does not answer yet ("placement ... does not have any supported versions"):
        started together with the APIs, they lost that race on a fresh lab (2026-11-27)."""
        units = service_units(d.topo, node, skip=("keystone",))
        served = {a.unit for a in haproxy.apis(d.topo)}
        if d.topo.runs("telemetry"):
            await self.gnocchi_storage(d, node)
        apis = [u for u in units if u in served]
        async with out_of_rotation(d, node, [u for u in apis if d.needs_restart(node.name, u)]):
            await ensure_units(d, node.name, apis)
            await wait_http(d, node.name, api_urls(d.topo, str(node.address)), f"every API on {node.name}")
        await wait_http(d, node.name, vip_api_urls(d.topo),
                        f"every API through the VIP, before the daemons on {node.name}")
        if d.topo.runs("telemetry") and node.name == first(d):
            await self.resource_types(d, node.name)
        await ensure_units(d, node.name, [u for u in units if u not in served])
        if api_watchdog.COMPONENT.applies(d.topo, node):  # only once every API answers: no restart mid-deploy
            await ensure_units(d, node.name, [api_watchdog.UNIT])

    async def gnocchi_storage(self, d: Deploy, node: Node) -> None:
        """This controller's own Gnocchi storage directory (see components/telemetry.py), once."""
        probe = await d.run(node.name, ["test", "-f", telemetry.STORAGE_MARKER], "look for Gnocchi's storage",
                            check=False)
        if probe.exit_status == 0:
            return
        await d.run(node.name, ["runuser", "-u", "gnocchi", "--", *telemetry.STORAGE_INIT],
                    "initialise Gnocchi's storage", timeout=300)
        d.changed(node.name, f"initialised Gnocchi's storage in {telemetry.STORAGE_DIR}")

    async def resource_types(self, d: Deploy, host: str) -> None:
        """ceilometer-upgrade, before ceilometer's agents start (without its resource types Gnocchi
        refuses their samples): once per ceilometer version, like the schemas. It reaches Gnocchi
        through the catalog, so every API must answer on the VIP first (the caller's gate)."""
        names = (telemetry.RESOURCE_TYPES_PACKAGE,)
        pkgs = await d.fact(host, packages(names), "read package versions")
        version = version_stamp(pkgs, names)
        stamp_path = f"{STAMP_DIR}/gnocchi-resource-types"
        t = d.transports[host]
        have = await d.fact(host, sql_rows("SELECT COUNT(*) FROM gnocchi.resource_type WHERE name = 'image'"),
                            "read Gnocchi's resource types")
        if await t.get(stamp_path) == version and have not in ((), (("0",),)):
            return  # the same ceilometer made them, and they are still there (not a re-created database)
        await d.run(host, ["runuser", "-u", "ceilometer", "--", *telemetry.RESOURCE_TYPES],
                    "ceilometer-upgrade (Gnocchi resource types)", timeout=600)
        await t.put(stamp_path, version, owner="root", group="root", mode=0o644)
        d.changed(host, "created ceilometer's resource types in Gnocchi")

    async def agent_node(self, d: Deploy, node: Node) -> None:
        """A network or compute node: its units, then (when any started) its own rows up, so the
        next node starts only when this one is through its CPU-heavy start."""
        if not await ensure_units(d, node.name, service_units(d.topo, node)):
            return
        mine = [e for e in expectations(d.topo)
                if e.host == node.name or (node.has("network") and e.host == d.topo.openstack.agent_host)]
        if mine:
            await api_gate(d, mine, f"{node.name}'s services up", timeout=240)

    async def discover_hosts(self, d: Deploy, host: str) -> None:
        """Map new computes into cell1 (nova-manage is slow to start: only when one is unmapped)."""
        computes = [n.name for n in d.topo.computes]
        if not computes or not d.topo.runs("nova"):
            return

        async def rows(sql: str, step: str) -> set[str]:
            return {row[0] for row in await d.fact(host, sql_rows(sql), step) if row}

        mapped = "SELECT host FROM nova_api.host_mappings"
        if set(computes) <= await rows(mapped, "read nova host mappings"):
            return

        async def registered() -> tuple[bool, object]:
            have = await rows("SELECT host FROM nova.compute_nodes WHERE deleted = 0", "read nova compute nodes")
            return set(computes) <= have, f"compute nodes: {sorted(have)}"

        await d.wait(host, "wait for compute nodes", registered,
                     what="every compute registered in nova", timeout=240, interval=3)
        res = await d.run(host, ["runuser", "-u", "nova", "--", "nova-manage", "cell_v2", "discover_hosts",
                                 "--verbose"], "nova-manage cell_v2 discover_hosts", timeout=300)
        for name in re.findall(r"Creating host mapping for compute host '([^']+)'", res.stdout):
            d.changed(host, f"mapped compute host {name} to its cell")
        missing = set(computes) - await rows(mapped, "read nova host mappings")
        if missing:
            raise StepFailed(host, "nova-manage cell_v2 discover_hosts", f"still unmapped: {sorted(missing)}", res,
                             code="NOVA-HOSTS-UNMAPPED")
