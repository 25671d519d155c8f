"""HAProxy's view of its backends: `show stat` on the admin socket, parsed from its CSV.

The command is a fixed python3 script with the socket path as its argument (the controllers
that run HAProxy have python3; this avoids depending on socat). The CSV is read by its header
line, so HAProxy versions that add columns do not break it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from hastack.facts.base import Fact, first_line
from hastack.transport.base import Result

ADMIN_SOCKET = "/run/haproxy/admin.sock"
UNREACHABLE_EXIT = 3

ADMIN_SCRIPT = """\
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except OSError as e:
    sys.stderr.write("cannot connect to %s: %s\\n" % (sys.argv[1], e.strerror or e))
    sys.exit(3)
s.sendall(sys.argv[2].encode() + b"\\n")
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    sys.stdout.buffer.write(chunk)
"""
"""Sends one command line (several commands separated by `;`) and copies the answer to stdout
(HAProxy closes the connection after it); exits 3 when nothing listens on the socket."""

SHOW_STAT_SCRIPT = ADMIN_SCRIPT.replace('sys.argv[2].encode() + b"\\n"', 'b"show stat\\n"')
"""The same for `show stat` alone (the command the recorded outputs were taken with)."""

TYPES = {"0": "frontend", "1": "backend", "2": "server", "3": "listener"}


@dataclass(frozen=True)
class StatRow:
    pxname: str
    svname: str
    type: str
    """frontend, backend, server or listener."""
    status: str
    """UP, DOWN, NOLB, MAINT, DRAIN, "UP 1/2" while rising/falling, OPEN for frontends..."""
    check_status: str
    weight: int
    active: bool
    """For a server: it is not a `backup` server. For a backend: count in `act`."""
    backup: bool
    lastchg: int | None
    fields: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def up(self) -> bool:
        return self.status == "UP" or self.status.startswith("UP ")


@dataclass(frozen=True)
class HAProxyStats:
    available: bool
    rows: tuple[StatRow, ...] = ()
    error: str = ""

    def servers(self, pxname: str) -> tuple[StatRow, ...]:
        return tuple(r for r in self.rows if r.pxname == pxname and r.type == "server")

    def backend(self, pxname: str) -> StatRow | None:
        return next((r for r in self.rows if r.pxname == pxname and r.type == "backend"), None)

    def server(self, pxname: str, svname: str) -> StatRow | None:
        return next((r for r in self.servers(pxname) if r.svname == svname), None)

    def up_servers(self, pxname: str) -> tuple[str, ...]:
        return tuple(r.svname for r in self.servers(pxname) if r.up)

    def serving(self, pxname: str) -> str | None:
        """Which server gets new connections when backups only stand in (the Galera writer):
        the first UP active server, else the first UP backup."""
        servers = self.servers(pxname)
        for wanted_backup in (False, True):
            for r in servers:
                if r.up and r.backup == wanted_backup and r.weight > 0:
                    return r.svname
        return None


def _int(value: str) -> int | None:
    return int(value) if value.strip().lstrip("-").isdigit() else None


def _flag(value: str) -> bool:
    return value not in ("", "0")


def parse_show_stat(text: str) -> HAProxyStats:
    lines = text.lstrip().splitlines()
    if not lines or not lines[0].startswith("#"):
        raise ValueError("no '# pxname,svname,...' header line")
    header = lines[0].lstrip("#").strip().split(",")
    if header[:2] != ["pxname", "svname"]:
        raise ValueError(f"unexpected header {lines[0][:60]!r}")
    rows = []
    for values in csv.reader(io.StringIO("\n".join(lines[1:]))):
        if not values:
            continue
        f = dict(zip(header, values, strict=False))
        kind = TYPES.get(f.get("type", ""), f.get("type", ""))
        rows.append(StatRow(
            f["pxname"], f["svname"], kind, f.get("status", ""), f.get("check_status", "").lstrip("* "),
            _int(f.get("weight", "")) or 0, _flag(f.get("act", "")), _flag(f.get("bck", "")),
            _int(f.get("lastchg", "")), {k: v for k, v in f.items() if k and k != "-"}))
    return HAProxyStats(True, tuple(rows))


def show_stat(socket_path: str = ADMIN_SOCKET) -> Fact[HAProxyStats]:
    def parse(r: Result) -> HAProxyStats:
        if r.exit_status == UNREACHABLE_EXIT:
            return HAProxyStats(False, error=first_line(r.stderr))
        if r.exit_status != 0:
            raise ValueError(first_line(r.stderr) or f"exit status {r.exit_status}")
        return parse_show_stat(r.stdout)

    return Fact("haproxy_stats", ("python3", "-c", SHOW_STAT_SCRIPT, socket_path), parse, 15.0)


ADMF_FORCED_MAINT = 0x01
ADMF_FORCED_DRAIN = 0x08
"""srv_admin_state bits set by `set server ... state maint|drain` (HAProxy's SRV_ADMF_FMAINT and
SRV_ADMF_FDRAIN); the others come from the configuration, a tracked server or DNS resolution."""


@dataclass(frozen=True)
class ServerState:
    backend: str
    server: str
    op_state: int
    """0 stopped, 1 starting, 2 running, 3 stopping."""
    admin_state: int

    @property
    def held_out(self) -> bool:
        """Put in maintenance or drain at run time (the admin socket): `show stat` cannot say so of a
        server whose checks fail, it reads DOWN; this state can."""
        return bool(self.admin_state & (ADMF_FORCED_MAINT | ADMF_FORCED_DRAIN))


def parse_servers_state(text: str) -> tuple[ServerState, ...]:
    """`show servers state`: a format version line ("1"), a `# be_id be_name ...` header, a row per server."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0].strip() != "1":
        raise ValueError(f"not a version 1 servers state dump: {text[:40]!r}")
    if len(lines) < 2 or not lines[1].startswith("# be_id be_name"):
        raise ValueError("no '# be_id be_name ...' header line")
    header = lines[1].lstrip("# ").split()
    out = []
    for line in lines[2:]:
        f = dict(zip(header, line.split(), strict=False))
        try:
            out.append(ServerState(f["be_name"], f["srv_name"], int(f["srv_op_state"]), int(f["srv_admin_state"])))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"bad servers state row {line[:60]!r}: {exc}") from None
    return tuple(out)


def servers_state(socket_path: str = ADMIN_SOCKET) -> Fact[tuple[ServerState, ...]]:
    def parse(r: Result) -> tuple[ServerState, ...]:
        if r.exit_status != 0:
            raise ValueError(first_line(r.stderr) or f"exit status {r.exit_status}")
        return parse_servers_state(r.stdout)

    return Fact("haproxy_servers_state", ("python3", "-c", ADMIN_SCRIPT, socket_path, "show servers state"), parse,
                15.0)
