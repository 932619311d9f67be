"""A fire-and-forget event log to one Kafka topic that never blocks its caller.

    caller --log(key, value): put_nowait--> bounded queue --sender thread--> KafkaProducer --> topic

`log()` costs one queue put. A full queue (Kafka down or slow) drops the event and counts it; the
sender thread owns the producer, (re)creates it while the broker is unreachable, sends with a
short `max_block_ms`, and counts the broker's answers from the producer's futures. So every
event ends in exactly one counter:

    sent                       acknowledged by the broker (acks=1)
    dropped{buffer_full}       the queue was full when log() was called
    dropped{send_failed}       the producer refused it (metadata timeout, its own buffer full)
    dropped{delivery_failed}   sent, then not acknowledged within delivery_timeout_ms
    dropped{closed}            still queued or unacknowledged when close() gave up waiting

Delivery resumes by itself when the broker returns. Shared by services that emit events beside a
request path (the assignment service's exposures); `flush()` is for tests and shutdown.

Partitions: the sender picks `crc32(key) % partitions` itself, so one key (one user) always lands
on one partition of the topic, as with the default partitioner; kafka-python's default is a
pure-Python murmur2 that cost 18 µs of the 79 µs CPU per record measured here (30,000 records,
local broker, linger 20 ms). The mapping differs from Java clients' murmur2, which matters only
if another producer wrote the same topic by key.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

DROP_REASONS = ("buffer_full", "send_failed", "delivery_failed", "closed")
DRAIN_MAX = 512  # events moved from the queue to the producer per send loop of the sender
TICK_S = 0.005  # the sender wakes this often and hands everything queued to the producer (which then
                # lingers linger_ms more to fill a batch): an event waits at most this long in the queue


class EventLog:
    def __init__(self, bootstrap: str, topic: str, buffer: int = 10_000, *, name: str = "events",
                 on_sent: Callable[[int], None] | None = None,
                 on_dropped: Callable[[str, int], None] | None = None,
                 producer_options: dict[str, Any] | None = None):
        self.bootstrap, self.topic, self.name = bootstrap, topic, name
        self._q: queue.Queue[tuple[bytes, bytes]] = queue.Queue(maxsize=buffer)
        self._on_sent = on_sent or (lambda n: None)
        self._on_dropped = on_dropped or (lambda reason, n: None)
        self._options = {"acks": 1, "linger_ms": 20, "batch_size": 256 * 1024, "retries": 2,
                         "max_block_ms": 1000, "request_timeout_ms": 3000, "delivery_timeout_ms": 6000,
                         "reconnect_backoff_max_ms": 1000,
                         # kafka-python 3 bootstraps inside the constructor, 30 s by default: with Kafka down
                         # the sender would sit there and close() wait for it; the retry loop retries each second
                         "bootstrap_timeout_ms": 2000, **(producer_options or {})}
        self.sent = 0
        self.dropped: Counter[str] = Counter()
        self._in_flight = 0  # handed to the producer, not yet acknowledged or failed
        self._futures: deque[Any] = deque()  # their futures, in send order (the sender thread's own)
        self._lock = threading.Lock()
        self.connected = False
        self._stop = threading.Event()
        self._closing = False  # close() was called: log() refuses (counted dropped{closed}); under _lock
        self._thread = threading.Thread(target=self._run, name=f"eventlog-{name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ caller side
    def log(self, key: bytes, value: bytes) -> bool:
        """Enqueue one event; False (and counted) when the queue is full or the log is closed."""
        with self._lock:  # against close(): after it, nothing enters a queue the sender has left
            if self._closing:
                reason = "closed"
            else:
                try:
                    self._q.put_nowait((key, value))
                    return True
                except queue.Full:
                    reason = "buffer_full"
        self._drop(reason)
        return False

    @property
    def pending(self) -> int:
        """Events queued or in flight (not yet sent or dropped)."""
        with self._lock:  # the sender moves events from the queue to in-flight under this lock
            return self._q.qsize() + self._in_flight

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every logged event is sent or dropped; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self.pending

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued (up to timeout_s), then stop; what is left counts as dropped{closed}.

        The queue's leftovers are counted by close() or the sender, whichever takes them (under the
        lock); the producer's open futures by the sender when it stops, so nothing is counted twice
        or not at all. The sender's own shutdown is bounded (producer flush and close, 2 s each) and
        close() waits for it that long more."""
        with self._lock:
            self._closing = True
        self.flush(timeout_s)
        self._stop.set()
        self._thread.join(timeout=timeout_s + 5)
        self._drop_queued()  # a sender stuck (connecting, say) never takes these; _take makes it one or the other
        if self._thread.is_alive():
            log.warning("%s: the sender did not stop in time; its in-flight events are counted when it does",
                        self.name)

    def _drop(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self.dropped[reason] += n
        self._on_dropped(reason, n)

    # ------------------------------------------------------------ sender thread
    def _settle(self, final: bool = False) -> None:
        """Count the producer's answers: futures done in send order leave the front of the window
        (one lock and one metric update per tick, not a callback per record on kafka-python's
        network thread); `final` counts every future still open as dropped{closed}."""
        ok = failed = left = 0
        futures = self._futures
        while futures and futures[0].is_done:
            if futures.popleft().succeeded():
                ok += 1
            else:
                failed += 1
        if final:
            left = len(futures)
            futures.clear()
        if ok or failed or left:
            with self._lock:
                self.sent += ok
                self._in_flight -= ok + failed + left
            if ok:
                self._on_sent(ok)
            if failed:
                self._drop("delivery_failed", failed)
            if left:
                self._drop("closed", left)

    def _connect(self) -> Any | None:
        from kafka import KafkaProducer

        try:
            producer = KafkaProducer(bootstrap_servers=self.bootstrap, **self._options)
        except Exception as exc:  # noqa: BLE001 - broker unreachable: the queue fills and drops meanwhile
            (log.debug if self.connected is None else log.warning)(
                "%s: Kafka at %s unreachable (%s); retrying every second, events beyond the buffer are "
                "dropped; run `make up` or set KAFKA_HOST/KAFKA_PORT", self.name, self.bootstrap, exc)
            self.connected = None  # warned once; quiet until the next success
            return None
        self.connected = True
        return producer

    def _partitions(self, producer: Any) -> int | None:
        try:
            parts = producer.partitions_for(self.topic)
        except Exception:  # noqa: BLE001 - metadata not there yet: let the producer's partitioner choose
            return None
        return len(parts) if parts else None

    def _take(self) -> list[tuple[bytes, bytes]]:
        """Up to DRAIN_MAX queued events, counted in flight in the same step (see `pending`)."""
        batch: list[tuple[bytes, bytes]] = []
        with self._lock:
            while len(batch) < DRAIN_MAX:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            self._in_flight += len(batch)
        return batch

    def _drop_queued(self) -> None:
        """Count whatever is still queued as dropped{closed} (called by whichever side stops last)."""
        left = 0
        while batch := self._take():
            left += len(batch)
        if left:
            with self._lock:
                self._in_flight -= left
            self._drop("closed", left)

    def _send(self, producer: Any, batch: list[tuple[bytes, bytes]], partitions: int | None) -> None:
        """Hand a taken batch (already counted in flight) to the producer."""
        for key, value in batch:
            try:
                part = zlib.crc32(key) % partitions if partitions else None
                fut = producer.send(self.topic, key=key, value=value, partition=part)
            except Exception as exc:  # noqa: BLE001 - metadata timeout, producer buffer exhausted
                with self._lock:
                    self._in_flight -= 1
                self._drop("send_failed")
                log.debug("%s: send failed: %s", self.name, exc)
                continue
            self._futures.append(fut)

    def _run(self) -> None:
        producer, partitions, asked = None, None, 0.0
        while not self._stop.is_set():
            if producer is None:
                producer = self._connect()
                if producer is None:
                    self._stop.wait(1.0)
                    continue
            if partitions is None and time.monotonic() - asked > 10:  # partitions_for may block max_block_ms
                asked = time.monotonic()
                partitions = self._partitions(producer)
            # wake on a clock, not per event: a sender blocked in get() was woken by every put, one
            # GIL hand-off per event between the request thread and this one
            self._stop.wait(TICK_S)
            self._settle()
            while batch := self._take():
                self._send(producer, batch, partitions)
        if producer is not None:
            try:
                producer.flush(timeout=2)
                producer.close(timeout=2)
            except Exception:  # noqa: BLE001, S110 - shutting down; the counters already tell
                pass
        self._drop_queued()  # queued and never handed over (no producer)
        self._settle(final=True)  # acknowledged ones count as sent, the rest as dropped{closed}
