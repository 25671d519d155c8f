#!/usr/bin/python3
"""hastack Galera health check for HAProxy: HTTP 200 only when this node can take writes.

200 when wsrep_ready is ON and wsrep_local_state is 4 (Synced), or 2 (Donor/Desynced) where the
state transfer is mariabackup's (the donor keeps serving while it streams); 503 otherwise, and when
MariaDB does not answer within the timeout.

Resident: systemd (hastack-galera-check.socket, Accept=no) hands over the listening socket; one
process answers every check with one MariaDB client session kept open (`mariadb` in batch mode,
fed a query per check on its stdin). The per-connection instance it replaces cost ~17 ms of CPU
per check (a new service instance, bash and a client connection each time), ~5 checks a second on
every controller. A session that errs, ends or is slow is killed and the next check starts another.
Each connection has its own thread, and checks that arrive while a query is in flight take that
query's answer: the three HAProxies ask at nearly the same moment, and queued one behind another
they each waited out the one before (a frozen writer: the second and third check failed at
HAProxy's 3 s timeout instead of on the 2 s answer, and writes moved 2 s later).

Without a socket from systemd (or --listen), it answers the one request on stdin/stdout and exits
(how the image tests drive it against a real MariaDB).

Settings come from the check's client file (the same one the client reads), section
[hastack-galera-check]: donor_ok (yes/no), timeout (seconds). Standard library only; no value from
a request reaches a command: the query is fixed and the answers are fixed strings.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

CNF = "/etc/mysql/hastack-clustercheck.cnf"
CLIENT = "/usr/bin/mariadb"
SECTION = "hastack-galera-check"
END = "hastack-end"
QUERY = (b"SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state', 'wsrep_ready');\n"
         + f"SELECT '{END}';\n".encode())
REQUEST_LIMIT = 8192
REQUEST_TIMEOUT_S = 1.0
SD_LISTEN_FDS_START = 3
MAX_CONNECTIONS = 32


class Settings:
    def __init__(self, cnf: str, client: str) -> None:
        parser = configparser.ConfigParser(allow_no_value=True, strict=False, interpolation=None)
        try:
            with open(cnf, encoding="utf-8") as f:
                parser.read_file(f)
        except OSError:
            pass  # the client will fail to read it too: every check answers 503
        section = parser[SECTION] if parser.has_section(SECTION) else {}
        self.donor_ok = str(section.get("donor_ok", "no")).strip().lower() in ("yes", "true", "1", "on")
        try:
            self.timeout_s = min(max(float(section.get("timeout", "2") or 2), 0.5), 30.0)
        except ValueError:  # a hand-edited file: keep checking with the default rather than not at all
            self.timeout_s = 2.0
        self.argv = [client, f"--defaults-file={cnf}", f"--connect-timeout={max(1, int(self.timeout_s))}",
                     "--batch", "--skip-column-names", "--unbuffered"]


class Session:
    """One `mariadb` client kept open; `state()` asks it once."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.proc: subprocess.Popen[bytes] | None = None
        self.buf = b""

    def close(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError):
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=2)
        self.proc, self.buf = None, b""

    def state(self, timeout_s: float) -> dict[str, str] | None:
        """wsrep_local_state and wsrep_ready, or None (no answer in time, an error, the client gone)."""
        try:
            if self.proc is None or self.proc.poll() is not None:
                self.close()
                self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.DEVNULL, close_fds=True)
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(QUERY)
            self.proc.stdin.flush()
            out: dict[str, str] = {}
            deadline = time.monotonic() + timeout_s
            fd = self.proc.stdout.fileno()
            while True:
                while b"\n" in self.buf:
                    line, self.buf = self.buf.split(b"\n", 1)
                    text = line.decode("utf-8", "replace").strip()
                    if text == END:
                        return out
                    name, _, value = text.partition("\t")
                    out[name] = value
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    break
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                self.buf += chunk
        except (OSError, ValueError):
            pass
        self.close()
        return None


class Shared:
    """One query at a time; a check arriving while one runs waits for it and takes its answer."""

    def __init__(self, session: Session, timeout_s: float) -> None:
        self.session, self.timeout_s = session, timeout_s
        self.cond = threading.Condition()
        self.running = False
        self.done = 0
        self.last: dict[str, str] | None = None

    def state(self) -> dict[str, str] | None:
        with self.cond:
            if self.running:
                ticket = self.done
                self.cond.wait_for(lambda: self.done != ticket, timeout=self.timeout_s + 2)
                return self.last if self.done != ticket else None
            self.running = True
        got = None
        try:
            got = self.session.state(self.timeout_s)
        finally:
            with self.cond:
                self.last, self.running = got, False
                self.done += 1
                self.cond.notify_all()
        return got


def verdict(state: dict[str, str] | None, donor_ok: bool) -> tuple[str, str]:
    if state is None:
        return "503 Service Unavailable", "MariaDB is not answering"
    ready, local = state.get("wsrep_ready", ""), state.get("wsrep_local_state", "")
    if ready != "ON":
        return "503 Service Unavailable", f"wsrep_ready={ready or 'unknown'}"
    if local == "4":
        return "200 OK", "Galera node is synced"
    if local == "2" and donor_ok:
        return "200 OK", "Galera node is a donor (non-blocking state transfer)"
    return "503 Service Unavailable", f"wsrep_local_state={local or 'unknown'}"


def response(status: str, text: str) -> bytes:
    body = (text + "\n").encode()
    head = (f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body


def drain(read: Callable[[float], bytes], timeout_s: float) -> None:
    """Read the request (line and headers) and throw it away: closing a socket with unread data
    sends a reset, which can destroy the answer before HAProxy reads it. Bounded in time and size."""
    deadline = time.monotonic() + timeout_s
    seen = b""
    while b"\r\n\r\n" not in seen and b"\n\n" not in seen and len(seen) < REQUEST_LIMIT:
        left = deadline - time.monotonic()
        chunk = read(left) if left > 0 else b""
        if not chunk:
            return
        seen += chunk


def serve_one(conn: socket.socket, shared: Shared, donor_ok: bool, slots: threading.BoundedSemaphore) -> None:
    def read(left: float) -> bytes:
        conn.settimeout(left)
        try:
            return conn.recv(4096)
        except (TimeoutError, OSError):
            return b""

    try:
        drain(read, REQUEST_TIMEOUT_S)
        conn.settimeout(shared.timeout_s + 1)
        conn.sendall(response(*verdict(shared.state(), donor_ok)))
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        conn.close()
        slots.release()


def listening_socket(listen: str | None) -> socket.socket | None:
    if listen:
        host, _, port = listen.rpartition(":")
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), int(port)))
        sock.listen(32)
        return sock
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS") == "1":
        return socket.socket(fileno=SD_LISTEN_FDS_START)
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--cnf", default=CNF)
    ap.add_argument("--client", default=CLIENT)
    ap.add_argument("--listen", help="ADDRESS:PORT to bind (tests); by default the socket systemd passes")
    args = ap.parse_args(argv)
    settings = Settings(args.cnf, args.client)
    session = Session(settings.argv)
    sock = listening_socket(args.listen)
    if sock is None:  # one exchange on stdin/stdout
        stdin = sys.stdin.buffer

        def read(left: float) -> bytes:
            if not select.select([stdin], [], [], left)[0]:
                return b""
            return os.read(stdin.fileno(), 4096)

        drain(read, REQUEST_TIMEOUT_S)
        sys.stdout.buffer.write(response(*verdict(session.state(settings.timeout_s), settings.donor_ok)))
        sys.stdout.buffer.flush()
        session.close()
        return 0
    def stop(*_: object) -> None:
        session.close()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    sock.settimeout(None)
    shared = Shared(session, settings.timeout_s)
    slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
    while True:
        try:
            conn, _ = sock.accept()
        except InterruptedError:
            continue
        if not slots.acquire(blocking=False):  # more callers than checks ever are: refuse, do not queue
            conn.close()
            continue
        threading.Thread(target=serve_one, args=(conn, shared, settings.donor_ok, slots), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
