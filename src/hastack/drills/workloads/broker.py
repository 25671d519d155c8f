"""Publishes with confirms to a RabbitMQ quorum queue, one consumer, and the loss and duplicate count."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from hastack.drills.samples import REDELIVERED, STALE, Recorder, short_error
from hastack.drills.workloads.base import AMQP_PORT, Clients, Credentials, Endpoints, paced, quietly

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
            quietly(conn.close)

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
