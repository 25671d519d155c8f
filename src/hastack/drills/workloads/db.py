"""Acknowledged writes to Galera through the VIP, and the check that each is on every node exactly once."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pymysql

from hastack.drills.samples import Recorder
from hastack.drills.workloads.base import DB_PORT, DB_TABLE, Clients, Credentials, Endpoints, paced, retry

# -- Galera through the VIP ------------------------------------------------------------------------------

CREATE_TABLE = (f"CREATE TABLE IF NOT EXISTS {DB_TABLE} (id VARCHAR(96) NOT NULL PRIMARY KEY, "
                "run VARCHAR(64) NOT NULL, node VARCHAR(64), "
                "created TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), KEY by_run (run)) ENGINE=InnoDB")
INSERT = f"INSERT INTO {DB_TABLE} (id, run, node) VALUES (%s, %s, @@wsrep_node_name)"
SELECT_RUN = f"SELECT id FROM {DB_TABLE} WHERE run = %s"


@dataclass
class _Session:
    conn: pymysql.connections.Connection[Any]
    node: str | None


class DbWrites:
    """Insert unique ids through the VIP, one commit each; an id is acknowledged when commit returns."""

    name = "db"

    def __init__(self, ep: Endpoints, creds: Credentials, run_id: str, rate: float = 20.0,
                 timeout: float = 2.0, workers: int = 4, verify_timeout: float = 60.0) -> None:
        self.ep, self.c, self.run_id, self.rate = ep, creds, run_id, rate
        self.timeout, self.workers, self.verify_timeout = timeout, workers, verify_timeout
        self.sessions: Clients[_Session] = Clients(lambda: self._session(self.ep.vip),
                                                   lambda s: s.conn.close())
        self.conf_before: int | None = None

    def _connect(self, host: str) -> pymysql.connections.Connection[Any]:
        return pymysql.connect(host=host, port=DB_PORT, user=self.c.db_user, password=self.c.db_password,
                               database=self.c.db_name, connect_timeout=min(1.0, self.timeout),
                               read_timeout=self.timeout, write_timeout=self.timeout, autocommit=False)

    def _session(self, host: str) -> _Session:
        conn = self._connect(host)
        with conn.cursor() as cur:
            cur.execute("SELECT @@wsrep_node_name")
            row = cur.fetchone()
        return _Session(conn, str(row[0]) if row else None)

    def prepare(self) -> None:
        conn = self._connect(self.ep.vip)
        try:
            with conn.cursor() as cur:
                cur.execute(CREATE_TABLE)
            conn.commit()
        finally:
            conn.close()
        self.conf_before = self.conf_id()

    def conf_id(self) -> int | None:
        """Galera's membership generation through the VIP: +1 at every change of the primary
        component (a node evicted, left or joined). None when it cannot be read."""
        try:
            conn = self._connect(self.ep.vip)
        except pymysql.MySQLError:
            return None
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW GLOBAL STATUS LIKE 'wsrep_cluster_conf_id'")
                row = cur.fetchone()
            return int(row[1]) if row else None
        except (pymysql.MySQLError, ValueError):
            return None
        finally:
            conn.close()

    def op(self, op_id: str) -> str | None:
        try:
            s = self.sessions.get()
            with s.conn.cursor() as cur:
                cur.execute(INSERT, (op_id, self.run_id))
            s.conn.commit()
        except Exception:
            self.sessions.drop()
            raise
        return s.node

    def run(self, rec: Recorder, stop: threading.Event, duration: float) -> None:
        try:
            paced(rec, stop, duration, stream="db", rate=self.rate, workers=self.workers, op=self.op,
                  ids=lambda i: f"{self.run_id}-d{i}")
        finally:
            self.sessions.close_all()

    def read_node(self, address: str) -> list[str]:
        """This run's ids as one node holds them, read directly (causal read: waits for apply)."""
        conn = self._connect(address)
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION wsrep_sync_wait = 1")
                cur.execute(SELECT_RUN, (self.run_id,))
                return sorted(str(r[0]) for r in cur.fetchall())
        finally:
            conn.close()

    def verify(self, rec: Recorder) -> None:
        present: dict[str, list[str] | None] = {}
        for name, address in self.ep.controllers.items():
            present[name] = retry(lambda a=address: self.read_node(a), self.verify_timeout)  # type: ignore[misc]
            if present[name] is None:
                rec.event("note", f"could not read {DB_TABLE} on {name}", node=name, ok=False)
        rec.check("db_present", present)
        # membership changes are counted only against a generation read before the run
        after = retry(self.conf_id, self.verify_timeout) if self.conf_before is not None else None
        rec.check("galera_conf_id", [self.conf_before, after])
