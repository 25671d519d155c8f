"""RPC through oslo.messaging, as an OpenStack service makes it: calls and casts to a server.

Why it looks like this:
- The library is the services' own (oslo.messaging, pinned to the series Debian 12 ships, 14.0.x) with
  the options hastack renders for them (`components.openstack.rabbit_options`: quorum queues, the
  heartbeat that detects a silent broker, the reconnect back-off cap; `rpc_response_timeout` from the
  topology's tuning), read from a small config file without secrets; the broker list and the login
  go in the transport URL, in memory only.
- One RPC server (topic `hastack-drill-rpc`, threading executor) plays nova-conductor; `clients`
  RPC clients, each with its own transport (own connections), play the services that call it.
  oslo.messaging shuffles the broker list for every connection, as it does for the services, so
  clients land on different brokers: the one whose broker dies shows what a service attached to it
  sees. The gap is therefore scored per client and the worst client is reported (`node` = client).
- Calls (`ping`, wait for the reply, bounded by `rpc_response_timeout`) and casts (`note`, fire and
  forget; the rabbit driver publishes with confirms). Every cast the broker confirmed must reach
  the server: after the run the server is given `drain_timeout` s to receive them, and a confirmed
  cast it never received is lost (a safety figure, like a confirmed message).
- The drills' own vhost and account (as the quorum-queue workload), never a service's.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hastack.components import openstack
from hastack.drills.samples import Recorder
from hastack.drills.workloads.base import AMQP_PORT, Credentials, Endpoints, paced, quietly
from hastack.topology.model import Topology

TOPIC, SERVER = "hastack-drill-rpc", "drill"
"""The server's name is fixed: oslo.messaging declares a durable queue per server (`topic.server`, a
quorum queue here) that stays when the server stops, so one name per run would leave a queue behind
for every drill."""
CALL, CAST, RECEIVED = "rpc_call", "rpc_cast", "rpc_received"
QUIET_LOGGERS = ("amqp", "kombu", "oslo", "oslo_messaging")
"""oslo_log names the loggers of `oslo_x` modules `oslo.x` (one `oslo` node for all of them)."""
RABBIT_LOGGER = "oslo.messaging._drivers.impl_rabbit"


def options_for(topo: Topology) -> dict[str, dict[str, Any]]:
    """The oslo.messaging options hastack renders for the services of `topo` (no secrets)."""
    return {"DEFAULT": {"rpc_response_timeout": topo.tuning.rabbitmq.rpc_response_timeout},
            **{k: dict(v) for k, v in openstack.rabbit_options(topo).items()}}


def transport_url(ep: Endpoints, c: Credentials) -> str:
    """Every broker, like the services' `transport_url`; user and password URL-quoted."""
    login = f"{quote(c.rabbit_user, safe='')}:{quote(c.rabbit_password, safe='')}"
    hosts = ",".join(f"{login}@{addr}:{AMQP_PORT}" for addr in ep.controllers.values())
    return f"rabbit://{hosts}/{quote(c.rabbit_vhost, safe='')}"


def config_text(options: Mapping[str, Mapping[str, Any]]) -> str:
    """oslo.config INI from sections of plain values (bools as true/false)."""
    lines: list[str] = []
    for section, values in options.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            if "\n" in text or "\n" in key:
                raise ValueError(f"{section}.{key}: a line break in an option")
            lines.append(f"{key} = {text}")
        lines.append("")
    return "\n".join(lines)


def _library() -> Any:
    """oslo.messaging, imported on first use (seconds of CPU: it pulls in oslo.service and eventlet,
    which warns that it is deprecated; nothing here uses eventlet)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import oslo_messaging  # type: ignore[import-not-found,import-untyped,unused-ignore]
    return oslo_messaging


def quiet_loggers() -> None:
    """oslo.messaging's and its transports' log lines (reconnects, pool warnings) stay off the terminal:
    the reconnects are the timeline's notes. Not propagated, and a NullHandler each, since a record that
    finds no handler at all is printed by logging's last resort."""
    for name in QUIET_LOGGERS:
        quiet = logging.getLogger(name)
        quiet.propagate = False
        if not any(isinstance(h, logging.NullHandler) for h in quiet.handlers):
            quiet.addHandler(logging.NullHandler())


class _Endpoint:
    """The server's side: answers `ping`, records each `note` it receives."""

    def __init__(self) -> None:
        self.rec: Recorder | None = None
        self.received: set[str] = set()
        self.lock = threading.Lock()

    def ping(self, ctxt: Any, id: str) -> str:  # noqa: A002 - the RPC argument's name
        return id

    def note(self, ctxt: Any, id: str) -> None:  # noqa: A002
        with self.lock:
            self.received.add(id)
        if self.rec is not None:
            self.rec.op(RECEIVED, self.rec.now(), True, id=id)


class _Connections(logging.Handler):
    """oslo.messaging's own log of which broker each connection reached or lost, as timeline notes
    (the password masked, should a message ever carry the URL)."""

    def __init__(self, rec: Recorder, secret: str) -> None:
        super().__init__(logging.INFO)
        self.rec, self.secrets = rec, {secret, quote(secret, safe="")} - {""}

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            text = record.getMessage()
            for s in self.secrets:
                text = text.replace(s, "***")
            if "AMQP server" in text:
                self.rec.event("note", f"rpc: {text[:200]}", ok=record.levelno < logging.WARNING)


class Rpc:
    """Calls and casts through oslo.messaging from `clients` clients to one server."""

    name = "rpc"

    def __init__(self, ep: Endpoints, creds: Credentials, run_id: str, options: Mapping[str, Mapping[str, Any]],
                 rate: float = 4.0, clients: int = 3, workers: int = 4, drain_timeout: float = 30.0) -> None:
        self.url, self.run_id, self.options = transport_url(ep, creds), run_id, options
        self.password = creds.rabbit_password
        self.rate, self.clients, self.workers, self.drain_timeout = rate, clients, workers, drain_timeout
        self.endpoint = _Endpoint()
        self.confirmed: set[str] = set()
        """Casts the broker confirmed (guarded by the endpoint's lock): what the server must receive."""
        self.timeout = float(options.get("DEFAULT", {}).get("rpc_response_timeout", 60))

    @contextlib.contextmanager
    def _conf(self) -> Iterator[Any]:
        from oslo_config import cfg  # type: ignore[import-not-found,import-untyped,unused-ignore]

        with tempfile.TemporaryDirectory(prefix="hastack-rpc-") as d:
            path = Path(d) / "rpc.conf"
            path.write_text(config_text(self.options))
            conf = cfg.ConfigOpts()
            conf(args=[], project="hastack-drill", default_config_files=[str(path)])
            # The RPC client reads [oslo_messaging_metrics], which oslo.messaging registers on the
            # global cfg.CONF only (the one a service uses); this private ConfigOpts needs it too.
            from oslo_messaging._metrics import client as metrics  # type: ignore[import-not-found,import-untyped,unused-ignore]

            conf.register_opts(metrics.oslo_messaging_metrics, group="oslo_messaging_metrics")
            yield conf

    def prepare(self) -> None:
        _library()  # fails before the drill when the library is missing

    def run(self, rec: Recorder, stop: threading.Event, duration: float) -> None:
        om = _library()

        self.endpoint.rec = rec
        quiet_loggers()
        log = logging.getLogger(RABBIT_LOGGER)
        handler = _Connections(rec, self.password)
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        transports: list[Any] = []
        server = None
        try:
            with self._conf() as conf:
                transports.append(om.get_rpc_transport(conf, url=self.url))
                server = om.get_rpc_server(transports[0], om.Target(topic=TOPIC, server=SERVER),
                                           [self.endpoint], executor="threading")
                server.start()
                threads = []
                for i in range(self.clients):
                    transports.append(om.get_rpc_transport(conf, url=self.url))
                    client = om.RPCClient(transports[-1], om.Target(topic=TOPIC), timeout=self.timeout)
                    threads.append(threading.Thread(target=self._client, args=(rec, stop, duration, i, client),
                                                    name=f"drill-rpc-{i}", daemon=True))
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(duration + self.timeout + 30)
                self._drain()
        finally:
            log.removeHandler(handler)
            if server is not None:
                quietly(server.stop)
                quietly(server.wait)
            for t in transports:
                quietly(t.cleanup)

    def _client(self, rec: Recorder, stop: threading.Event, duration: float, i: int, client: Any) -> None:
        node = f"client-{i}"

        def call(op_id: str) -> str:
            if client.call({}, "ping", id=op_id) != op_id:
                raise RuntimeError("the reply is not the id sent")
            return node

        def cast(op_id: str) -> str:
            client.cast({}, "note", id=op_id)
            with self.endpoint.lock:
                self.confirmed.add(op_id)
            return node

        caster = threading.Thread(target=paced, name=f"drill-rpc-cast-{i}", daemon=True, args=(rec, stop, duration),
                                  kwargs={"stream": CAST, "rate": self.rate / 2, "workers": self.workers, "op": cast,
                                          "ids": lambda k: f"{self.run_id}-c{i}-{k}"})
        caster.start()
        paced(rec, stop, duration, stream=CALL, rate=self.rate / 2, workers=self.workers, op=call,
              ids=lambda k: f"{self.run_id}-r{i}-{k}")
        caster.join(duration + self.timeout + 30)

    def _drain(self) -> None:
        """Give the server a bounded time to receive every cast the broker confirmed."""
        deadline = time.monotonic() + self.drain_timeout
        while time.monotonic() < deadline:
            with self.endpoint.lock:
                if self.confirmed <= self.endpoint.received:
                    return
            time.sleep(0.5)

    def verify(self, rec: Recorder) -> None:
        pass
