"""MariaDB + Galera on every controller, and the HTTP health check HAProxy uses to pick the writer.

Why it looks like this:
- `bind-address` is the node's own address: HAProxy binds the VIP on port 3306 on the same host
  (nonlocal bind), so a server listening on 0.0.0.0:3306 would take the VIP's port away from it.
- `wsrep_cluster_address` lists every member, MariaDB and garbd alike: a node (re)starting while
  some peers are down still finds the primary component through whichever member is up. With two
  controllers and garbd, leaving garbd out would strand a restarting controller. It has a file of
  its own (`MEMBERS_CONF`) that restarts nothing: mariadbd reads it only to join, and a running
  member learns who is in the cluster from the cluster. Replacing a controller therefore rewrites
  the list on the others without a restart (a restart would cost each of them a state transfer
  and the writer a failover for nothing).
- The evs timeouts come from `tuning.galera` (lab: 3.3 s to evict a killed node instead of 6.4 s);
  validation already refuses a keepalive period above a third of the suspect timeout, which mariadbd
  itself refuses.
- The health check is a systemd socket (Accept=yes, no xinetd) that runs a short bash script per
  HAProxy probe. It answers 200 only when the node is Synced and wsrep_ready=ON; with mariabackup a
  Donor also answers 200 because that state transfer does not block the donor. It runs as `mysql`
  with its own read-only user `clustercheck` (SHOW STATUS needs no privilege).

The SQL users this module relies on are created by deploy, once, on the bootstrap node (Galera
replicates them): see `DB_USERS`. Their passwords come from the shared secret names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hastack.agents import db_backup, galera_check
from hastack.components.base import Ctx, File, template
from hastack.topology.model import GaleraTuning, Node, Topology

CONF = "/etc/mysql/mariadb.conf.d/99-hastack-galera.cnf"
MEMBERS_CONF = "/etc/mysql/mariadb.conf.d/99-hastack-members.cnf"
PROBE_USER = PROBE_DB = "hastack_probe"
PROBE_SECRET = "db/hastack_probe"
"""hastack's own SQL account and schema, reached through the VIP: status, drills and tests write here."""
CHECK_CNF = "/etc/mysql/hastack-clustercheck.cnf"
CHECK_SCRIPT = "/usr/local/lib/hastack/galera-check"
CHECK_SOCKET = "hastack-galera-check.socket"
CHECK_SERVICE = "hastack-galera-check.service"
CHECK_PORT = 9200
CHECK_DB_TIMEOUT_S = 2
MARIADB_CLIENT = "/usr/bin/mariadb"
"""How long the check script waits for MariaDB before answering 503 (HAProxy waits a bit longer)."""
GALERA_PORT = 4567
MAX_CONNECTIONS = 4096
TABLE_OPEN_CACHE = 1000

BACKUP_PROGRAM = "/usr/local/lib/hastack/db-backup"
BACKUP_ROOT = "/var/backups/hastack-db"
"""`hastack backup` keeps its copies here on the node that took them (agents/db_backup.py)."""
BACKUP_KEEP = 2
"""Full backups (with their incrementals) kept on a node by default (`backups.keep` when scheduled)."""
BACKUP_SERVICE = "hastack-db-backup@.service"
"""`hastack-db-backup@full` / `@incr`: the node takes the backup if it is the one to (see
agents/db_backup.py `scheduled`), else logs why not and ends; what the timers start, and what an
operator may start by hand on every controller at once."""
BACKUP_TIMERS = {"full": "hastack-db-backup-full.timer", "incr": "hastack-db-backup-incr.timer"}


def backup_keep(topo: Topology) -> int:
    return topo.backups.keep if topo.backups else BACKUP_KEEP


def backup_timers(topo: Topology) -> dict[str, str]:
    """{timer unit: calendar} of the schedule (none without `backups:`)."""
    b = topo.backups
    if b is None:
        return {}
    when = {"full": b.full, "incr": b.incremental}
    return {BACKUP_TIMERS[k]: v for k, v in when.items() if v is not None}


def backup_files(topo: Topology, node: Node) -> list[File]:
    """The backup program, its service template (always: a backup by hand on every node picks one
    node too) and the schedule's timers."""
    order = " ".join(str(n.address) for n in topo.controllers)
    files = [
        File(BACKUP_PROGRAM, Path(db_backup.__file__).read_bytes(), mode=0o755),
        File(f"/etc/systemd/system/{BACKUP_SERVICE}",
             template("galera/hastack-db-backup@.service.j2", program=BACKUP_PROGRAM, root=BACKUP_ROOT,
                      keep=backup_keep(topo), me=node.address, order=order)),
    ]
    for kind, timer in BACKUP_TIMERS.items():
        if calendar := backup_timers(topo).get(timer):
            files.append(File(f"/etc/systemd/system/{timer}",
                              template("galera/hastack-db-backup.timer.j2", kind=kind, calendar=calendar,
                                       service=BACKUP_SERVICE.replace("@.", f"@{kind}.")),
                              restarts=(timer,)))
    return files

SST_USER = "sst"
SST_SECRET = "galera/sst"
CHECK_USER = "clustercheck"
CHECK_SECRET = "galera/check"


def sql_quote(value: str) -> str:
    """A MariaDB string literal (SQL goes to `mariadb` on stdin, never in an argv)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


@dataclass(frozen=True)
class DbUser:
    """A SQL account deploy must create (on the bootstrap node) before the rest can rely on it."""

    name: str
    host: str
    secret: str
    grants: str


DB_USERS: tuple[DbUser, ...] = (
    # mariabackup on the donor connects through the local socket (MariaDB 10.5+ privilege names).
    DbUser(SST_USER, "localhost", SST_SECRET, "RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR ON *.*"),
    DbUser(CHECK_USER, "localhost", CHECK_SECRET, "USAGE ON *.*"),
)


def members(topo: Topology) -> list[Node]:
    """Every Galera vote: the controllers, then the garbd nodes, in topology order."""
    return topo.controllers + topo.garbd_nodes


def gcomm_peers(topo: Topology) -> list[str]:
    return [f"{n.address}:{GALERA_PORT}" for n in members(topo)]


def evs_options(g: GaleraTuning) -> list[str]:
    """Failure detection shared by mariadbd and garbd: one member judging faster than another
    would evict peers the others still consider alive."""
    return [
        f"evs.suspect_timeout={g.evs_suspect_timeout}",
        f"evs.inactive_timeout={g.evs_inactive_timeout}",
        f"evs.keepalive_period={g.evs_keepalive_period}",
        f"evs.install_timeout={g.evs_install_timeout}",
    ]


def provider_options(topo: Topology, node: Node) -> list[str]:
    g = topo.tuning.galera
    return [
        f"gmcast.listen_addr=tcp://{node.address}:{GALERA_PORT}",
        f"gcache.size={g.gcache_size}",
        # keep the write-set cache across a restart: after a full outage the bootstrap node can
        # then give the others only what they missed (IST) instead of a full copy (SST)
        "gcache.recover=yes",
        f"pc.recovery={'TRUE' if g.pc_recovery else 'FALSE'}",
        *evs_options(g),
    ]


def server_cnf(ctx: Ctx, node: Node) -> str:
    g = ctx.topo.tuning.galera
    sst_password = ctx.secrets.password(SST_SECRET) if g.sst_method == "mariabackup" else ""
    return template(
        "galera/99-hastack-galera.cnf.j2", node=node, cluster=ctx.topo.name, g=g,
        members_file=MEMBERS_CONF, max_connections=MAX_CONNECTIONS, table_open_cache=TABLE_OPEN_CACHE,
        sst_user=SST_USER, sst_password=sst_password, provider_options=provider_options(ctx.topo, node),
    )


def members_cnf(ctx: Ctx, node: Node) -> str:
    return template("galera/99-hastack-members.cnf.j2", node=node, cluster=ctx.topo.name,
                    members=gcomm_peers(ctx.topo), garbd=bool(ctx.topo.garbd_nodes))


def check_donor_ok(topo: Topology) -> bool:
    """A donor keeps serving (and passes the check) only with mariabackup; rsync blocks it."""
    return topo.tuning.galera.sst_method == "mariabackup"


def check_files(ctx: Ctx, node: Node) -> list[File]:
    """The resident health check (agents/galera_check.py) behind a socket unit (Accept=no). A node
    deployed before it ran one instance per check: the socket unit's change restarts the socket,
    whose next connection starts the resident service; the old template unit is removed by deploy."""
    restart = (CHECK_SOCKET,)
    return [
        File(CHECK_CNF, template("galera/hastack-clustercheck.cnf.j2", script=CHECK_SCRIPT, user=CHECK_USER,
                                 password=ctx.secrets.password(CHECK_SECRET), donor_ok=check_donor_ok(ctx.topo),
                                 db_timeout_s=CHECK_DB_TIMEOUT_S),
             group="mysql", mode=0o640, secret=True, restarts=(CHECK_SERVICE,)),
        File(CHECK_SCRIPT, Path(galera_check.__file__).read_bytes(), mode=0o755, restarts=(CHECK_SERVICE,)),
        File(f"/etc/systemd/system/{CHECK_SOCKET}",
             template("galera/hastack-galera-check.socket.j2", node=node, port=CHECK_PORT), restarts=restart),
        File(f"/etc/systemd/system/{CHECK_SERVICE}",
             template("galera/hastack-galera-check.service.j2", script=CHECK_SCRIPT, socket=CHECK_SOCKET),
             restarts=(CHECK_SERVICE,)),
    ]


class Galera:
    name = "galera"

    def applies(self, topo: Topology, node: Node) -> bool:
        return node.has("controller")

    def packages(self, topo: Topology, node: Node) -> list[str]:
        # wsrep_sst_mariabackup streams through socat; rsync SST needs rsync; backups need mariadb-backup.
        sst = ["socat"] if topo.tuning.galera.sst_method == "mariabackup" else ["rsync"]
        return ["mariadb-server", "galera-4", "mariadb-backup", *sst]

    def units(self, topo: Topology, node: Node) -> list[str]:
        return ["mariadb", CHECK_SOCKET]

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        has_auth = ctx.topo.tuning.galera.sst_method == "mariabackup"
        cnf = File(CONF, server_cnf(ctx, node), group="mysql", mode=0o640, secret=has_auth,
                   restarts=("mariadb",))
        members_file = File(MEMBERS_CONF, members_cnf(ctx, node), group="mysql", mode=0o640)
        return [cnf, members_file, *check_files(ctx, node), *backup_files(ctx.topo, node)]


COMPONENT = Galera()
