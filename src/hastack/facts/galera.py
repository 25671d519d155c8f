"""Galera facts: wsrep status and variables, grastate.dat, and `mariadbd --wsrep-recover`.

The status answers "is this node in the primary component and synced"; grastate.dat and the
recovered position answer "which node is the most advanced" when the whole cluster is down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hastack.facts.base import Fact, first_line, require_exit
from hastack.facts.files import read_parsed
from hastack.transport.base import Result

GRASTATE = "/var/lib/mysql/grastate.dat"
NIL_UUID = "00000000-0000-0000-0000-000000000000"


def _unescape_batch(value: str) -> str:
    """mariadb -B escapes tab, newline, NUL and backslash in values."""
    return re.sub(r"\\(.)", lambda m: {"t": "\t", "n": "\n", "0": "\0"}.get(m.group(1), m.group(1)), value)


def parse_variables(text: str) -> dict[str, str]:
    """`mariadb -N -B` output of SHOW ... LIKE: one `name TAB value` per line."""
    out = {}
    for line in text.splitlines():
        if not line:
            continue
        name, _, value = line.partition("\t")
        out[name] = _unescape_batch(value)
    return out


@dataclass(frozen=True)
class GaleraStatus:
    """SHOW GLOBAL STATUS LIKE 'wsrep_%' of one node, or why the server did not answer."""

    available: bool
    values: dict[str, str] = field(default_factory=dict)
    error: str = ""

    def _get(self, key: str, default: str = "") -> str:
        return self.values.get(f"wsrep_{key}", default)

    @property
    def cluster_status(self) -> str:
        """Primary, non-Primary or Disconnected."""
        return self._get("cluster_status")

    @property
    def primary(self) -> bool:
        return self.cluster_status == "Primary"

    @property
    def state(self) -> str:
        """Joining, Donor/Desynced, Joined, Synced (wsrep_local_state_comment)."""
        return self._get("local_state_comment")

    @property
    def synced(self) -> bool:
        return self.primary and self.state == "Synced" and self.ready

    @property
    def incoming_hosts(self) -> tuple[str, ...]:
        """The host part of every member's client address (`wsrep_incoming_addresses`,
        "10.77.0.11:3306,10.77.0.12:3306"); members without one (garbd, a node still joining)
        leave an empty or AUTO entry, skipped here."""
        out = []
        for item in self._get("incoming_addresses").split(","):
            host = item.strip().rsplit(":", 1)[0].strip("[]")
            if host and host != "AUTO":
                out.append(host)
        return tuple(out)

    @property
    def ready(self) -> bool:
        return self._get("ready") == "ON"

    @property
    def connected(self) -> bool:
        return self._get("connected") == "ON"

    @property
    def cluster_size(self) -> int:
        return int(self._get("cluster_size", "0") or 0)

    @property
    def cluster_uuid(self) -> str:
        return self._get("cluster_state_uuid")

    @property
    def last_committed(self) -> int:
        return int(self._get("last_committed", "-1") or -1)

    @property
    def incoming_addresses(self) -> list[str]:
        raw = self._get("incoming_addresses")
        return [a for a in raw.split(",") if a]


MARIADB_QUERY = ("mariadb", "--connect-timeout=5", "-N", "-B", "-e")
"""The local client as root over the socket, batch output without column names: every query fact's prefix."""


def _mariadb(sql: str) -> tuple[str, ...]:
    return (*MARIADB_QUERY, sql)


def parse_rows(text: str) -> tuple[tuple[str, ...], ...]:
    """`mariadb -N -B` rows: columns split at tabs, values unescaped."""
    return tuple(tuple(_unescape_batch(v) for v in line.split("\t")) for line in text.splitlines() if line)


def sql_rows(sql: str, timeout: float = 60.0) -> Fact[tuple[tuple[str, ...], ...]]:
    """The rows of a read-only query (deploy's checks of what exists: compute hosts, resource types)."""
    return Fact("sql_rows", _mariadb(sql), lambda r: parse_rows(require_exit(r).stdout), timeout)


def table_counts() -> Fact[dict[str, int]]:
    """Tables per database: a database with none is empty (created, never synced, or re-created)."""
    def parse(r: Result) -> dict[str, int]:
        return {row[0]: int(row[1]) for row in parse_rows(require_exit(r).stdout) if len(row) == 2}

    return Fact("table_counts", _mariadb("SELECT TABLE_SCHEMA, COUNT(*) FROM information_schema.TABLES "
                                         "GROUP BY TABLE_SCHEMA"), parse, 60.0)


def parse_galera_status(r: Result) -> GaleraStatus:
    if r.exit_status != 0:
        # the server is down or refuses us: that is the answer (ERROR 2002 ... socket ...)
        return GaleraStatus(False, error=first_line(r.stderr) or f"mariadb exited {r.exit_status}")
    values = parse_variables(r.stdout)
    if values and not all(k.startswith("wsrep_") for k in values):
        raise ValueError("unexpected variable names in wsrep status")
    return GaleraStatus(True, values)


def galera_status() -> Fact[GaleraStatus]:
    return Fact("galera_status", _mariadb("SHOW GLOBAL STATUS LIKE 'wsrep_%'"), parse_galera_status, 15.0)


def sql_accounts() -> Fact[frozenset[str]]:
    """Every SQL account as `user@host` (`mysql.user`). Galera replicates accounts, so one node says."""
    def parse(r: Result) -> frozenset[str]:
        return frozenset(line.strip() for line in require_exit(r).stdout.splitlines() if line.strip())

    return Fact("sql_accounts", _mariadb("SELECT CONCAT(User,'@',Host) FROM mysql.user"), parse, 15.0)


def galera_variables() -> Fact[dict[str, str]]:
    """wsrep_* server variables (cluster address, node name, provider options...)."""
    return Fact("galera_variables", _mariadb("SHOW GLOBAL VARIABLES LIKE 'wsrep_%'"),
                lambda r: parse_variables(require_exit(r).stdout), 15.0)


# -- grastate.dat ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GraState:
    uuid: str
    seqno: int
    """-1 after a crash (or while running): ask --wsrep-recover for the real position."""
    safe_to_bootstrap: bool
    version: str = ""


def parse_grastate(text: str) -> GraState:
    fields = {}
    for line in text.splitlines():
        if line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return GraState(fields["uuid"], int(fields["seqno"]), fields.get("safe_to_bootstrap", "0") == "1",
                    fields.get("version", ""))


def grastate(path: str = GRASTATE) -> Fact[GraState | None]:
    """None when the file does not exist (a node that never ran Galera)."""
    return read_parsed("grastate", path, parse_grastate)


# -- mariadbd --wsrep-recover --------------------------------------------------------------

_RECOVERED = re.compile(r"WSREP: Recovered position:\s*([0-9a-f-]{36}):(-?\d+)(?:,(\S+))?")


@dataclass(frozen=True)
class RecoveredPosition:
    uuid: str
    seqno: int
    gtid: str = ""
    """MariaDB may append its GTID (domain-server-sequence) after a comma."""

    @property
    def start_position(self) -> str:
        """The value for --wsrep-start-position."""
        return f"{self.uuid}:{self.seqno}"


def parse_recovered(text: str) -> RecoveredPosition:
    """Find the position line in the server's log output; the last one wins."""
    found = _RECOVERED.findall(text)
    if not found:
        raise ValueError("no 'WSREP: Recovered position' line in the output")
    uuid, seqno, gtid = found[-1]
    return RecoveredPosition(uuid, int(seqno), gtid)


def wsrep_recover() -> Fact[RecoveredPosition]:
    """Start mariadbd in recovery mode (it exits by itself) and read the position it logs.

    Only while mariadb is stopped. --disable-log-error sends the log to stderr, like
    Debian's galera_recovery does. The exit status is not trusted either way: the position
    line is the answer, and its absence is an error that shows the log's tail.
    """
    argv = ("mariadbd", "--user=mysql", "--wsrep-recover", "--disable-log-error")
    return Fact("wsrep_recover", argv, lambda r: parse_recovered(r.stdout + "\n" + r.stderr), 300.0)
