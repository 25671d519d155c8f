"""What every workload shares: the Workload protocol, where and who (endpoints, credentials,
rates), per-worker clients and the open-loop pacing (see the package's docstring for why)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import ipaddress
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import httpx

from hastack import pki
from hastack.components import galera, keystone, rabbitmq
from hastack.drills.samples import SKIPPED, Recorder, short_error
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
    rpc: float = 4.0
    """Per RPC client, calls and casts together (half each)."""


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
            quietly(lambda: self._close(client))

    def close_all(self) -> None:
        with self._lock:
            clients, self._by_thread = list(self._by_thread.values()), {}
        for c in clients:
            quietly(lambda c=c: self._close(c))  # type: ignore[misc]


def quietly(fn: Callable[[], object]) -> None:
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


def retry(fn: Callable[[], T], timeout: float, pause: float = 1.0) -> T | None:
    """A node that just rejoined may refuse for a moment; give it a bounded number of tries."""
    tries = max(1, int(timeout / pause))
    for k in range(tries):
        try:
            return fn()
        except Exception:  # any failure means "not yet"; the last one means "unreadable"
            if k + 1 < tries:
                time.sleep(pause)
    return None
