"""Impression log to Kafka that never blocks a response, and loses nothing uncounted on shutdown.

    request thread --put_nowait--> bounded queue --sender thread--> KafkaProducer --> topic

`log()` costs a queue put; when the queue is full (Kafka down or slow) the
event is dropped and counted. The sender thread owns the producer: it
(re)creates it when Kafka is unreachable, sends with a short `max_block_ms`,
and counts delivery results from the producer's callbacks, so "sent" means
acknowledged by the broker and "dropped" covers a full buffer and failed
deliveries alike. Delivery resumes by itself when the broker returns.

Accounting: every `log()` call ends in exactly one of `sent` or `dropped`.

    logged = sent + dropped[buffer_full | send_failed | delivery_failed | shutdown]
             + queued + pending (handed to the producer, no callback yet)

`close(timeout_s)` (SIGTERM: BentoML's shutdown hook) drains the queue into
the producer and flushes it within the time given; what is still queued or
pending then is counted as dropped with reason `shutdown` (a late callback for
it is ignored, so nothing is counted twice), as is any `log()` after close.
The last line it logs states the whole balance.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable

log = logging.getLogger(__name__)


class ImpressionLog:
    def __init__(self, bootstrap: str, topic: str, buffer: int = 10_000,
                 on_sent: Callable[[int], None] | None = None,
                 on_dropped: Callable[[str, int], None] | None = None,
                 on_depth: Callable[[int], None] | None = None):
        self.bootstrap, self.topic = bootstrap, topic
        self._q: queue.Queue[tuple[bytes, bytes]] = queue.Queue(maxsize=buffer)
        self._on_sent = on_sent or (lambda n: None)
        self._on_dropped = on_dropped or (lambda reason, n: None)
        self._on_depth = on_depth or (lambda n: None)  # queue depth, sampled every ~0.2 s
        self._lock = threading.Lock()  # guards the counters, `_closing` and `_final`
        self.logged = self.sent = self.pending = 0
        self.dropped_by: Counter[str] = Counter()
        self._closing = False  # no new events are queued
        self._final = False  # the balance is closed: late producer callbacks are ignored
        self._stop = threading.Event()
        self._drain_until = 0.0  # time.monotonic() deadline of the shutdown drain
        self._thread = threading.Thread(target=self._run, name="impressions", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        return sum(self.dropped_by.values())

    # ------------------------------------------------------------ request path
    def log(self, key: bytes, value: bytes) -> bool:
        """Enqueue one event; False (and counted) when the buffer is full or the log is closing."""
        with self._lock:
            self.logged += 1
            if self._closing:
                self._drop_locked("shutdown")
                return False
            try:
                self._q.put_nowait((key, value))
                return True
            except queue.Full:
                self._drop_locked("buffer_full")
                return False

    def _drop_locked(self, reason: str, n: int = 1) -> None:
        self.dropped_by[reason] += n
        self._on_dropped(reason, n)

    # ------------------------------------------------------------ sender thread
    def _producer(self):
        from kafka import KafkaProducer

        return KafkaProducer(bootstrap_servers=self.bootstrap, acks=1, linger_ms=100, batch_size=256 * 1024, retries=2,
                             max_block_ms=1000, request_timeout_ms=3000, delivery_timeout_ms=6000,
                             reconnect_backoff_max_ms=1000, bootstrap_timeout_ms=2000)  # constructor bootstrap: 30 s by default

    def _ok(self, _meta) -> None:
        with self._lock:
            if self._final:
                return
            self.pending -= 1
            self.sent += 1
            self._on_sent(1)

    def _err(self, exc) -> None:
        with self._lock:
            if self._final:
                return
            self.pending -= 1
            self._drop_locked("shutdown" if self._stop.is_set() else "delivery_failed")

    def _send(self, producer, key: bytes, value: bytes) -> None:
        with self._lock:
            if self._final:  # close() gave up waiting for this thread; the event in hand was in no count
                self._drop_locked("shutdown")
                return
            self.pending += 1
        try:
            fut = producer.send(self.topic, key=key, value=value)
        except Exception as exc:  # metadata timeout, buffer exhausted: the event is lost
            with self._lock:
                if not self._final:
                    self.pending -= 1
                    self._drop_locked("send_failed")
            log.debug("impressions: send failed: %s", exc)
            return
        fut.add_callback(self._ok)
        fut.add_errback(self._err)

    def _run(self) -> None:
        producer = None
        warned = False
        sampled = 0.0
        while not self._stop.is_set():
            if time.monotonic() - sampled > 0.2:
                sampled = time.monotonic()
                self._on_depth(self._q.qsize())
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
            self._send(producer, key, value)
        self._drain(producer)

    def _drain(self, producer) -> None:
        """Shutdown: queue -> producer -> broker until the deadline; the rest is counted by close()."""
        if producer is None:
            return
        while time.monotonic() < self._drain_until:
            try:
                key, value = self._q.get_nowait()
            except queue.Empty:
                break
            self._send(producer, key, value)
        try:
            producer.flush(timeout=max(0.0, self._drain_until - time.monotonic()))
        except Exception as exc:  # KafkaTimeoutError: some records were not acknowledged in time
            log.warning("impressions: flush at shutdown incomplete: %s", exc)
        try:
            producer.close(timeout=0)
        except Exception:  # close() flushes again and may time out at once; nothing more to wait for
            pass

    # ------------------------------------------------------------ lifecycle
    def close(self, timeout_s: float = 5.0) -> dict[str, int]:
        """Stop taking events, deliver what is buffered within `timeout_s`, count the rest as
        dropped (reason `shutdown`); returns the final balance (also logged)."""
        t0 = time.monotonic()
        with self._lock:
            self._closing = True
        self._drain_until = t0 + timeout_s
        self._stop.set()
        self._thread.join(timeout=timeout_s + 1.0)
        with self._lock:
            left = self.pending
            while True:
                try:
                    self._q.get_nowait()
                    left += 1
                except queue.Empty:
                    break
            if left:
                self._drop_locked("shutdown", left)
            self.pending = 0
            self._final = True
            balance = {"logged": self.logged, "sent": self.sent, "dropped": self.dropped,
                       **{f"dropped_{r}": n for r, n in sorted(self.dropped_by.items())}}
        self._on_depth(0)
        log.info("impressions closed in %.2f s: %s", time.monotonic() - t0,
                 " ".join(f"{k}={v}" for k, v in balance.items()))
        return balance
