"""The five workloads a drill runs while it breaks something, and the watcher.

Why they look like this:
- Open loop, paced: each workload *starts* an operation every 1/rate seconds on a small pool of
  workers, whatever the previous ones are doing. A closed loop (one operation after the other)
  would measure its own timeout instead of the outage: the first request after a fault hangs for
  its whole timeout and nothing else is tried meanwhile. When every worker is blocked, the due
  operation is recorded as skipped (the client stalled) rather than queued without bound.
- Every loop is bounded by count (rate x duration + 1), by time (duration), and by the stop event;
  every operation by its own short timeout. Nothing here retries forever.
- Clients behave like real ones: a worker keeps its connection (keep-alive HTTP, a MariaDB session,
  an AMQP connection with confirms) and opens a new one after an error, to any broker for AMQP.
- Only the topology's addresses (its management network) or loopback are ever contacted; `Endpoints`
  refuses anything else, and httpx ignores proxy settings from the environment.
- Passwords come from the secrets file and never appear in a sample, an error or a log line.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ipaddress
import itertools
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import httpx
import pymysql

from hastack import pki
from hastack.components import galera, keystone, rabbitmq
from hastack.drills.samples import REDELIVERED, SKIPPED, STALE, Placement, Recorder, short_error
from hastack.secrets import Secrets
from hastack.topology.model import Topology

T = TypeVar("T")

KEYSTONE_PORT, DB_PORT, AMQP_PORT, NEUTRON_PORT = 5000, 3306, 5672, 9696
DB_TABLE = "drill_writes"
RABBIT_VHOST, RABBIT_QUEUE = rabbitmq.DRILLS_VHOST, "hastack.drill"


class Workload(Protocol):
    name: str

    def prepare(self) -> None:
        """Once, before the drill's baseline (create a table, declare a queue); raises if it cannot."""

    def run(self, rec: Recorder, stop: threading.Event, duration: float) -> None:
        """Record operations until `stop` is set or `duration` seconds have passed."""

    def verify(self, rec: Recorder) -> None:
        """After the run and the heal: record final checks (`rec.check`)."""


class UnsafeTarget(ValueError):
    """An address outside the topology's management network (and not loopback)."""


# -- where and who ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Endpoints:
    vip: str
    controllers: Mapping[str, str]
    """name -> address, topology order: the brokers, and the Galera nodes the final check reads."""
    network: str
    keystone_port: int = KEYSTONE_PORT
    neutron_port: int | None = None
    """Neutron's API on the VIP, when the topology runs Neutron (the network-list workload)."""
    vip_probe_port: int = KEYSTONE_PORT
    """An HTTP listener of HAProxy on the VIP: a connect that sends nothing costs HAProxy nothing and
    never reaches a backend (a probe of the TCP-mode 3306 listener would open a MariaDB connection
    per probe and log an aborted handshake for each)."""
    scheme: str = "http"
    """https when the topology has TLS on the VIP: the clients then verify it with `ca_pem`."""
    ca_pem: str | None = field(default=None, repr=False)
    quorum_queue: bool = True
    """The test queue's type follows the topology's `rabbitmq.queues`: a quorum queue, or a classic
    queue that the brokers' `ha-all` policy mirrors (what OpenStack's own queues are there)."""

    def __post_init__(self) -> None:
        net = ipaddress.ip_network(self.network)
        for addr in [self.vip, *self.controllers.values()]:
            ip = ipaddress.ip_address(addr)
            if not (ip.is_loopback or ip in net):
                raise UnsafeTarget(f"{addr} is outside {net}: drills only reach the topology's own network")

    @classmethod
    def from_topology(cls, topo: Topology, ca_pem: str | None = None) -> Endpoints:
        return cls(vip=str(topo.network.vip), controllers={n.name: str(n.address) for n in topo.controllers},
                   network=str(topo.network.management),
                   neutron_port=NEUTRON_PORT if topo.runs("neutron") else None,
                   scheme=topo.api_scheme, ca_pem=ca_pem,
                   quorum_queue=topo.rabbitmq.queues == "quorum")

    def url(self, port: int, path: str) -> str:
        return f"{self.scheme}://{self.vip}:{port}{path}"

    def http_client(self, timeout: float, workers: int) -> httpx.Client:
        """Connections kept alive (one TLS handshake per worker, not per request), no proxies from
        the environment, the VIP's certificate checked against the cluster's CA."""
        return httpx.Client(timeout=httpx.Timeout(timeout, connect=min(0.5, timeout)), verify=pki.verify(self.ca_pem),
                            limits=httpx.Limits(max_connections=workers), trust_env=False)


@dataclass(frozen=True)
class Credentials:
    keystone_password: str = field(repr=False)
    db_password: str = field(repr=False)
    rabbit_password: str = field(repr=False)
    keystone_user: str = "admin"
    keystone_project: str = "admin"
    keystone_domain: str = "Default"
    db_user: str = galera.PROBE_USER
    db_name: str = galera.PROBE_DB
    rabbit_user: str = rabbitmq.ADMIN_USER
    rabbit_vhost: str = RABBIT_VHOST
    rabbit_queue: str = RABBIT_QUEUE

    SECRETS = (keystone.ADMIN_SECRET, galera.PROBE_SECRET, rabbitmq.ADMIN_SECRET)

    @classmethod
    def from_secrets(cls, secrets: Secrets) -> Credentials:
        """Only existing secrets: asking `Secrets` for a missing one would invent a password."""
        missing = [n for n in cls.SECRETS if n not in secrets.names()]
        if missing:
            raise KeyError(f"secrets {', '.join(missing)} are missing: deploy the topology first")
        ks, db, rb = (secrets.password(n) for n in cls.SECRETS)
        return cls(keystone_password=ks, db_password=db, rabbit_password=rb)


@dataclass(frozen=True)
class Rates:
    vip: float = 50.0
    keystone: float = 10.0
    networks: float = 5.0
    db: float = 20.0
    publish: float = 20.0


# -- pacing and per-worker clients -----------------------------------------------------------------------

class Clients(Generic[T]):
    """One client per worker thread, reopened after an error, all closed at the end."""

    def __init__(self, make: Callable[[], T], close: Callable[[T], None]) -> None:
        self._make, self._close = make, close
        self._lock = threading.Lock()
        self._by_thread: dict[int, T] = {}

    def get(self) -> T:
        me = threading.get_ident()
        with self._lock:
            client = self._by_thread.get(me)
        if client is None:
            client = self._make()
            with self._lock:
                self._by_thread[me] = client
        return client

    def drop(self) -> None:
        with self._lock:
            client = self._by_thread.pop(threading.get_ident(), None)
        if client is not None:
            _quietly(lambda: self._close(client))

    def close_all(self) -> None:
        with self._lock:
            clients, self._by_thread = list(self._by_thread.values()), {}
        for c in clients:
            _quietly(lambda c=c: self._close(c))  # type: ignore[misc]


def _quietly(fn: Callable[[], object]) -> None:
    """Closing a connection to a dead server may fail in any way; there is nothing left to do."""
    with contextlib.suppress(Exception):
        fn()


Op = Callable[[str], "str | None"]
"""An operation: takes its id, returns the node that served it (or None), raises on failure."""


def paced(rec: Recorder, stop: threading.Event, duration: float, *, stream: str, rate: float, workers: int,
          op: Op, ids: Callable[[int], str]) -> None:
    """Start `op` every 1/rate s on `workers` threads until stop or duration; record each outcome."""
    interval, start = 1.0 / rate, time.monotonic()
    busy = threading.BoundedSemaphore(workers)

    def one(op_id: str) -> None:
        began = rec.now()
        try:
            node = op(op_id)
        except Exception as exc:  # every failure is a sample, never a crash
            rec.op(stream, began, False, id=op_id, error=short_error(exc))
        else:
            rec.op(stream, began, True, id=op_id, node=node)
        finally:
            busy.release()

    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix=f"drill-{stream}") as pool:
        for i in range(int(duration * rate) + 1):
            delay = start + i * interval - time.monotonic()
            if (delay > 0 and stop.wait(delay)) or stop.is_set() or time.monotonic() - start >= duration:
                break
            if not busy.acquire(blocking=False):
                rec.op(stream, rec.now(), False, id=ids(i), error=f"all {workers} workers busy", flag=SKIPPED)
                continue
            pool.submit(one, ids(i))


# -- VIP probe -------------------------------------------------------------------------------------------

class VipProbe:
    """TCP connect to HAProxy on the VIP: is the address held, and is HAProxy answering there?"""

    name = "vip"

    def __init__(self, ep: Endpoints, run_id: str, rate: float = 50.0, timeout: float = 0.25,
                 workers: int = 8) -> None:
        self.ep, self.run_id, self.rate, self.timeout, self.workers = ep, run_id, rate, timeout, workers

    def prepare(self) -> None:
        pass

    def op(self, _id: str) -> str | None:
        with socket.create_connection((self.ep.vip, self.ep.vip_probe_port), timeout=self.timeout):
            return None

    def run(self, rec: Recorder, stop: threading.Event, duration: float) -> None:
        paced(rec, stop, duration, stream="vip", rate=self.rate, workers=self.workers, op=self.op,
              ids=lambda i: f"{self.run_id}-v{i}")

    def verify(self, rec: Recorder) -> None:
        pass


# -- Keystone --------------------------------------------------------------------------------------------

class KeystoneTokens:
    """Issue project-scoped tokens through the VIP (reads Keystone's database through the VIP too).

    Like a long-running service, the client logs in with its password once and then asks for each
    new token with the token it holds (the `token` auth method), logging in again only when that is
    refused. A password login costs Keystone a bcrypt hash (~0.7 s of CPU here): ten of them a
    second would saturate this 2-core machine by themselves and measure the CPU, not the failover.
    Fernet tokens are checked with the keys every controller shares, so any controller serves it."""

    name = "keystone"

    def __init__(self, ep: Endpoints, creds: Credentials, run_id: str, rate: float = 10.0,
                 timeout: float = 2.0, workers: int = 4) -> None:
        self.ep, self.run_id, self.rate, self.workers = ep, run_id, rate, workers
        self.url = ep.url(ep.keystone_port, "/v3/auth/tokens")
        self.creds, self.body = creds, token_request(creds)
        self.held: str | None = None
        self.client = ep.http_client(timeout, workers)

    def prepare(self) -> None:
        self.held = self.login()

    def login(self) -> str:
        """A token from a password login (the one bcrypt check a long-running client pays)."""
        return self._issue(self.body)

    def _issue(self, body: dict[str, Any]) -> str:
        resp = self.client.post(self.url, json=body)
        token = str(resp.headers.get("X-Subject-Token", ""))
        if resp.status_code != 201 or not token:
            raise RuntimeError(f"HTTP {resp.status_code}")
        return token

    def op(self, _id: str) -> str | None:
        held = self.held
        if held is None:  # the last login was refused: log in again, as a real client would
            self.held = held = self.login()
        try:
            self._issue(keystone.token_auth(held, self.creds.keystone_project, self.creds.keystone_domain))
        except RuntimeError as exc:
            if str(exc) == "HTTP 401":
                self.held = None
            raise
        return None

    def run(self, rec: Recorder, stop: threading.Event, duration: float) -> None:
        try:
            paced(rec, stop, duration, stream="keystone", rate=self.rate, workers=self.workers, op=self.op,
                  ids=lambda i: f"{self.run_id}-k{i}")
        finally:
            self.client.close()

    def verify(self, rec: Recorder) -> None:
        pass


class NeutronNetworks:
    """List networks through the VIP (Neutron's API: keystonemiddleware checks the token against
    Keystone and memcached, then a read of Neutron's database through the VIP), as a dashboard or a
    CLI user would. The token comes from one password login and is renewed only when refused."""

    name = "networks"

    def __init__(self, ep: Endpoints, creds: Credentials, run_id: str, rate: float = 5.0,
                 timeout: float = 2.0, workers: int = 3) -> None:
        assert ep.neutron_port is not None
        self.run_id, self.rate, self.workers = run_id, rate, workers
        self.url = ep.url(ep.neutron_port, "/v2.0/networks")
        self.keystone = KeystoneTokens(ep, creds, run_id, timeout=timeout, workers=1)
        self.client = ep.http_client(timeout, workers)
        self.token: str | None = None

    def prepare(self) -> None:
        self.token = self.keystone.login()

    def op(self, _id: str) -> str | None:
        token = self.token
        if token is None:
            self.token = token = self.keystone.login()
        resp = self.client.get(self.url, headers={"X-Auth-Token": token})
        if resp.status_code == 401:
            self.token = None
        if resp.status_code != 200 or "networks" not in resp.json():
            raise RuntimeError(f"HTTP {resp.status_code}")
        return None

    def run(self, rec: Recorder, stop: threading.Event, duration: float) -> None:
        try:
            paced(rec, stop, duration, stream="networks", rate=self.rate, workers=self.workers, op=self.op,
                  ids=lambda i: f"{self.run_id}-n{i}")
        finally:
            self.client.close()
            self.keystone.client.close()

    def verify(self, rec: Recorder) -> None:
        pass


def token_request(c: Credentials) -> dict[str, Any]:
    return keystone.password_auth(c.keystone_user, c.keystone_password, c.keystone_project, c.keystone_domain)


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
            present[name] = _retry(lambda a=address: self.read_node(a), self.verify_timeout)  # type: ignore[misc]
            if present[name] is None:
                rec.event("note", f"could not read {DB_TABLE} on {name}", node=name, ok=False)
        rec.check("db_present", present)
        # membership changes are counted only against a generation read before the run
        after = _retry(self.conf_id, self.verify_timeout) if self.conf_before is not None else None
        rec.check("galera_conf_id", [self.conf_before, after])


def _retry(fn: Callable[[], T], timeout: float, pause: float = 1.0) -> T | None:
    """A node that just rejoined may refuse for a moment; give it a bounded number of tries."""
    tries = max(1, int(timeout / pause))
    for k in range(tries):
        try:
            return fn()
        except Exception:  # any failure means "not yet"; the last one means "unreadable"
            if k + 1 < tries:
                time.sleep(pause)
    return None


# -- RabbitMQ quorum queue ----------------------------------------------------------------------------------

class Broker:
    """Publish with confirms to a quorum queue from several workers; one consumer acks every delivery."""

    name = "broker"

    def __init__(self, ep: Endpoints, creds: Credentials, run_id: str, rate: float = 20.0, workers: int = 3,
                 heartbeat: int = 2, tcp_user_timeout_ms: int = 1500, drain_timeout: float = 30.0,
                 quiet: float = 2.0) -> None:
        self.ep, self.c, self.run_id, self.rate, self.workers = ep, creds, run_id, rate, workers
        self.heartbeat, self.tcp_user_timeout_ms = heartbeat, tcp_user_timeout_ms
        self.drain_timeout, self.quiet = drain_timeout, quiet
        self._turn = itertools.count()
        self._turn_lock = threading.Lock()
        self.publishers: Clients[tuple[Any, Any, str]] = Clients(self._publisher, lambda c: c[0].close())
        self.publishing_done = threading.Event()

    def _params(self, address: str) -> Any:
        import pika  # type: ignore[import-untyped]

        return pika.ConnectionParameters(
            host=address, port=AMQP_PORT, virtual_host=self.c.rabbit_vhost,
            credentials=pika.PlainCredentials(self.c.rabbit_user, self.c.rabbit_password),
            heartbeat=self.heartbeat, blocked_connection_timeout=5, socket_timeout=1.0, stack_timeout=3.0,
            connection_attempts=1, retry_delay=0, tcp_options={"TCP_USER_TIMEOUT": self.tcp_user_timeout_ms})

    def connect(self) -> tuple[Any, str]:
        """Any broker, starting from the next one in turn (workers spread over the cluster)."""
        import pika

        brokers = list(self.ep.controllers.values())
        with self._turn_lock:
            first = next(self._turn)
        last: Exception | None = None
        for k in range(len(brokers)):
            address = brokers[(first + k) % len(brokers)]
            try:
                return pika.BlockingConnection(self._params(address)), address
            except Exception as exc:  # try the next broker
                last = exc
        raise ConnectionError(f"no broker answered: {short_error(last) if last else 'no brokers'}")

    def _publisher(self) -> tuple[Any, Any, str]:
        conn, address = self.connect()
        ch = conn.channel()
        ch.confirm_delivery()
        return conn, ch, address

    def prepare(self) -> None:
        conn, _ = self.connect()
        try:
            kind = {"x-queue-type": "quorum"} if self.ep.quorum_queue else {}
            conn.channel().queue_declare(self.c.rabbit_queue, durable=True, arguments=kind)
        finally:
            conn.close()

    def publish(self, op_id: str) -> str | None:
        import pika

        try:
            _, ch, address = self.publishers.get()
            props = pika.BasicProperties(message_id=op_id, delivery_mode=2, content_type="text/plain")
            ch.basic_publish("", self.c.rabbit_queue, op_id.encode(), props, mandatory=True)
        except Exception:
            self.publishers.drop()
            raise
        return str(address)

    def run(self, rec: Recorder, stop: threading.Event, duration: float) -> None:
        self.publishing_done.clear()
        deadline = time.monotonic() + duration + self.drain_timeout
        consumer = threading.Thread(target=self.consume, args=(rec, deadline), name="drill-consume",
                                    daemon=True)
        consumer.start()
        try:
            paced(rec, stop, duration, stream="publish", rate=self.rate, workers=self.workers,
                  op=self.publish, ids=lambda i: f"{self.run_id}-m{i}")
        finally:
            self.publishers.close_all()
            self.publishing_done.set()
            consumer.join(timeout=max(0.0, deadline - time.monotonic()) + 5.0)

    def consume(self, rec: Recorder, deadline: float) -> None:
        """Until publishing is over and the queue stays empty for `quiet` s (or the deadline)."""
        drained = False
        while not drained and time.monotonic() < deadline:
            began = rec.now()
            try:
                drained = self._consume_once(rec, deadline)
            except Exception as exc:  # reconnect to any broker
                rec.op("consume", began, False, error=short_error(exc))
                time.sleep(0.2)
        rec.check("consume_drained", drained)

    def _consume_once(self, rec: Recorder, deadline: float) -> bool:
        conn, address = self.connect()
        try:
            ch = conn.channel()
            ch.basic_qos(prefetch_count=100)
            idle_since = time.monotonic()
            for method, props, body in ch.consume(self.c.rabbit_queue, inactivity_timeout=0.2):
                now = time.monotonic()
                if method is None:
                    if self._drained(ch, idle_since, now):
                        return True
                    if now >= deadline:
                        return False
                    continue
                idle_since = now
                self._record(rec, method, props, body, address)
                ch.basic_ack(method.delivery_tag)
            return False
        finally:
            _quietly(conn.close)

    def _drained(self, ch: Any, idle_since: float, now: float) -> bool:
        if not self.publishing_done.is_set() or now - idle_since < self.quiet:
            return False
        left = ch.queue_declare(self.c.rabbit_queue, passive=True).method.message_count
        return int(left) == 0

    def _record(self, rec: Recorder, method: Any, props: Any, body: bytes, address: str) -> None:
        msg_id = str(getattr(props, "message_id", None) or body.decode(errors="replace"))
        flag = STALE if not msg_id.startswith(f"{self.run_id}-") else (
            REDELIVERED if method.redelivered else None)
        rec.op("consume", rec.now(), True, id=msg_id, node=address, flag=flag)

    def verify(self, rec: Recorder) -> None:
        pass


# -- the watcher ---------------------------------------------------------------------------------------------

Observe = Callable[[], Mapping[str, Any]]
"""The lab's view of placements: {"vip": [nodes], "agents": [nodes], "galera_writer": node | None}."""


def placement(t: float, seen: Mapping[str, Any]) -> Placement:
    """Check the observer's answer: a malformed one is an error sample, not a silent empty list."""
    vip, agents, writer = seen.get("vip", []), seen.get("agents", []), seen.get("galera_writer")
    if not all(isinstance(x, list | tuple) and all(isinstance(n, str) for n in x) for x in (vip, agents)):
        return Placement(t, error=f"malformed observation: {dict(seen)!r}"[:200])
    if writer is not None and not isinstance(writer, str):
        return Placement(t, error=f"malformed galera_writer: {writer!r}"[:200])
    return Placement(t, tuple(sorted(vip)), tuple(sorted(agents)), writer)


class Sampler:
    """Samples placements `rate` times a second through the lab's `observe` callable.

    A sample is stamped at the middle of the call (the observation is somewhere inside it). The loop
    is closed: an observer slower than 1/rate lowers the rate, it never piles calls up.
    """

    name = "watcher"

    def __init__(self, observe: Observe, rate: float = 10.0) -> None:
        self.observe, self.rate = observe, rate

    def prepare(self) -> None:
        pass

    def sample(self, rec: Recorder) -> Placement:
        began = rec.now()
        try:
            seen = self.observe()
        except Exception as exc:  # an unreachable node is data
            p = Placement((began + rec.now()) / 2, error=short_error(exc))
        else:
            p = placement((began + rec.now()) / 2, seen)
        rec.place(p)
        return p

    def run(self, rec: Recorder, stop: threading.Event, duration: float) -> None:
        interval, start = 1.0 / self.rate, time.monotonic()
        for i in range(int(duration * self.rate) + 1):
            delay = start + i * interval - time.monotonic()
            if (delay > 0 and stop.wait(delay)) or stop.is_set() or time.monotonic() - start >= duration:
                return
            self.sample(rec)

    def verify(self, rec: Recorder) -> None:
        pass


def standard(ep: Endpoints, creds: Credentials, run_id: str, rates: Rates = Rates()) -> list[Workload]:
    """The client workloads of every drill (the watcher is passed to the runner separately); the
    network list only where the topology runs Neutron."""
    out: list[Workload] = [VipProbe(ep, run_id, rates.vip), KeystoneTokens(ep, creds, run_id, rates.keystone)]
    if ep.neutron_port is not None:
        out.append(NeutronNetworks(ep, creds, run_id, rates.networks))
    return [*out, DbWrites(ep, creds, run_id, rates.db), Broker(ep, creds, run_id, rates.publish)]
