"""Where the simulator's `Interaction` events go: Kafka, or nowhere (--dry-run).

    runner --sink.send(Interaction)--> KafkaProducer (key = user id) --> interactions topic

`KafkaSink` counts what the broker acknowledged (`sent`) and what failed
(`errors`: producer could not be created, send raised, delivery failed). When
the broker is unreachable the producer is re-created at most once per
`retry_s`; events in between are counted as errors, never retried, so a
simulation keeps its pace and its summary says how many were lost.
`DrySink` counts and, when asked, keeps the events (tests, --dry-run).
"""

from __future__ import annotations

import logging
import threading
import time

from minirec.events import Interaction, encode, key_of

log = logging.getLogger(__name__)


class DrySink:
    """Counts events instead of sending them (`keep=True` also stores them in `events`)."""

    def __init__(self, keep: bool = False):
        self.keep, self.events = keep, []
        self.sent, self.errors = 0, 0
        self.last_error: str | None = None
        self._lock = threading.Lock()

    def send(self, event: Interaction) -> None:
        with self._lock:
            self.sent += 1
            if self.keep:
                self.events.append(event)

    def close(self) -> None:
        pass


class KafkaSink:
    def __init__(self, bootstrap: str, topic: str, retry_s: float = 5.0):
        self.bootstrap, self.topic, self.retry_s = bootstrap, topic, retry_s
        self.sent, self.errors = 0, 0
        self.last_error: str | None = None
        self._producer = None
        self._next_try = 0.0
        self._lock = threading.Lock()

    def _fail(self, reason: str) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = reason

    def _ok(self, _meta) -> None:
        with self._lock:
            self.sent += 1

    def _get(self):
        with self._lock:
            if self._producer is not None or time.monotonic() < self._next_try:
                return self._producer
            self._next_try = time.monotonic() + self.retry_s
            from kafka import KafkaProducer

            try:
                self._producer = KafkaProducer(
                    bootstrap_servers=self.bootstrap, acks="all", linger_ms=20, retries=3,
                    max_block_ms=2000, request_timeout_ms=5000, delivery_timeout_ms=15000,
                    # kafka-python 3 bootstraps in the constructor, 30 s by default, with this lock held:
                    # an absent broker stalled every session thread for 30 s per retry
                    bootstrap_timeout_ms=2000)
            except Exception as exc:  # NoBrokersAvailable and friends
                msg = (f"Kafka did not answer on {self.bootstrap} ({type(exc).__name__}: {exc}); run `make up` "
                       "or set KAFKA_HOST/KAFKA_PORT (or use --dry-run)")
                log.warning(msg)
                self.last_error = msg
            return self._producer

    def send(self, event: Interaction) -> None:
        producer = self._get()
        if producer is None:
            self._fail(self.last_error or "no producer")
            return
        try:
            fut = producer.send(self.topic, key=key_of(event), value=encode(event))
        except Exception as exc:  # metadata timeout (unknown topic, broker gone), buffer full
            self._fail(f"send to {self.topic} on {self.bootstrap} failed ({type(exc).__name__}: {exc}); check "
                       "that the broker runs and the topic exists (`make up` creates it)")
            return
        fut.add_callback(self._ok)
        fut.add_errback(lambda exc: self._fail(f"delivery failed: {type(exc).__name__}: {exc}"))

    def close(self, timeout_s: float = 15.0) -> None:
        """Flush (waits for the acknowledgements the summary counts) and close."""
        if self._producer is not None:
            try:
                self._producer.flush(timeout=timeout_s)
            except Exception as exc:
                self.last_error = f"flush failed: {exc}"
            self._producer.close(timeout=5)
            self._producer = None
