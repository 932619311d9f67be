"""Impression log to Kafka that never blocks a response.

    request thread --put_nowait--> bounded queue --sender thread--> KafkaProducer --> topic

`log()` costs a queue put; when the queue is full (Kafka down or slow) the
event is dropped and counted. The sender thread owns the producer: it
(re)creates it when Kafka is unreachable, sends with a short `max_block_ms`,
and counts delivery results from the producer's callbacks, so "sent" means
acknowledged by the broker and "dropped" covers a full buffer and failed
deliveries alike. Delivery resumes by itself when the broker returns.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class ImpressionLog:
    def __init__(self, bootstrap: str, topic: str, buffer: int = 10_000,
                 on_sent: Callable[[int], None] | None = None,
                 on_dropped: Callable[[str, int], None] | None = None):
        self.bootstrap, self.topic = bootstrap, topic
        self._q: queue.Queue[tuple[bytes, bytes]] = queue.Queue(maxsize=buffer)
        self._on_sent = on_sent or (lambda n: None)
        self._on_dropped = on_dropped or (lambda reason, n: None)
        self.sent = 0
        self.dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="impressions", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ request path
    def log(self, key: bytes, value: bytes) -> bool:
        """Enqueue one event; False (and counted) when the buffer is full."""
        try:
            self._q.put_nowait((key, value))
            return True
        except queue.Full:
            self._drop("buffer_full")
            return False

    def _drop(self, reason: str, n: int = 1) -> None:
        self.dropped += n
        self._on_dropped(reason, n)

    # ------------------------------------------------------------ sender thread
    def _producer(self):
        from kafka import KafkaProducer

        return KafkaProducer(bootstrap_servers=self.bootstrap, acks=1, linger_ms=100, batch_size=256 * 1024, retries=2,
                             max_block_ms=1000, request_timeout_ms=3000, delivery_timeout_ms=6000,
                             reconnect_backoff_max_ms=1000)

    def _ok(self, _meta) -> None:
        self.sent += 1
        self._on_sent(1)

    def _err(self, exc) -> None:
        self._drop("delivery_failed")

    def _run(self) -> None:
        producer = None
        warned = False
        while not self._stop.is_set():
            if producer is None:
                try:
                    producer = self._producer()
                    warned = False
                except Exception as exc:  # broker unreachable: the queue fills and drops meanwhile
                    (log.debug if warned else log.warning)(
                        "impressions: Kafka at %s unreachable (%s); retrying every second, events beyond the "
                        "buffer are dropped; run `make up` or set KAFKA_HOST/KAFKA_PORT", self.bootstrap, exc)
                    warned = True
                    self._stop.wait(1.0)
                    continue
            try:
                key, value = self._q.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                fut = producer.send(self.topic, key=key, value=value)
                fut.add_callback(self._ok)
                fut.add_errback(self._err)
            except Exception as exc:  # metadata timeout, buffer exhausted: the event is lost
                self._drop("send_failed")
                log.debug("impressions: send failed: %s", exc)
        if producer is not None:
            try:
                producer.flush(timeout=2)
                producer.close(timeout=2)
            except Exception:
                pass

    def flush(self, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self._q.empty() and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
