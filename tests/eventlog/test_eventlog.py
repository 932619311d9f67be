"""minirec.eventlog.EventLog: every logged event ends in exactly one counter; never blocks the caller."""

from __future__ import annotations

import time

from minirec.eventlog import EventLog
from minirec.infra.process import free_port
from tests.assignment.conftest import consume


def test_events_reach_the_topic_and_are_counted_sent(kafka_broker, kafka_topic):
    seen = []
    log = EventLog(kafka_broker.bootstrap, kafka_topic, buffer=1000, on_sent=seen.append)
    try:
        for i in range(500):
            assert log.log(str(i % 37).encode(), f"event-{i}".encode())
        assert log.flush(timeout_s=30)
        assert log.sent == 500 and sum(log.dropped.values()) == 0 and sum(seen) == 500
    finally:
        log.close()
    values = consume(kafka_broker.bootstrap, kafka_topic, 500)
    assert sorted(values) == sorted(f"event-{i}".encode() for i in range(500))


def test_an_unreachable_broker_drops_and_counts_without_blocking():
    log = EventLog(f"127.0.0.1:{free_port()}", "nowhere", buffer=10)
    t0 = time.monotonic()
    accepted = sum(log.log(b"k", b"v") for _ in range(50))
    assert time.monotonic() - t0 < 0.2  # 50 calls: queue puts, no network
    assert accepted == 10 and log.dropped["buffer_full"] == 40
    log.close(timeout_s=0.5)
    assert log.dropped["closed"] == 10 and log.sent == 0
    assert log.sent + sum(log.dropped.values()) == 50


def test_close_right_after_a_burst_leaves_nothing_uncounted(kafka_broker, kafka_topic):
    """Closed while events are queued and in flight: each one is sent or dropped{closed}, never lost
    between the counters (the sender settles the producer's open futures when it stops)."""
    log = EventLog(kafka_broker.bootstrap, kafka_topic, buffer=20_000)
    deadline = time.monotonic() + 30
    while not log.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    n = 5_000
    for i in range(n):
        log.log(str(i).encode(), b"x" * 100)
    log.close(timeout_s=0.05)  # far too short to deliver 5,000 events
    log._thread.join(timeout=10)  # the sender's last settle may end after close() returned
    assert not log._thread.is_alive()
    assert log.sent + sum(log.dropped.values()) == n, (log.sent, dict(log.dropped))
    assert log.pending == 0
