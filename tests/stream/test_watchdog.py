"""The group watchdog: a consumer whose group membership stays unstable is replaced, and the
replacement resumes from the committed offsets with nothing lost (real Kafka, Redis and Feast)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from minirec.events import encode, key_of
from services.stream.watchdog import GroupWatchdog
from tests.stream.conftest import committed_offsets, end_offsets, read_lake, stream_config, wait_for
from tests.stream.test_crash import make_events


class _Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _consumer(stable: bool):
    return SimpleNamespace(_coordinator=SimpleNamespace(stable=lambda: stable))


def test_stuck_only_after_the_limit_without_a_stable_group():
    clock = _Clock()
    dog = GroupWatchdog(limit_s=60, clock=clock)
    clock.t = 59
    assert not dog.stuck(_consumer(stable=False))  # rebalancing, but not for long yet
    clock.t = 61
    assert dog.stuck(_consumer(stable=False))
    assert not dog.stuck(_consumer(stable=True))  # stable again: the clock restarts
    clock.t = 100
    assert not dog.stuck(_consumer(stable=False))  # 39 s since stable
    dog.reset()
    clock.t = 150
    assert not dog.stuck(_consumer(stable=False))  # 50 s since the reset
    clock.t = 161
    assert dog.stuck(_consumer(stable=False))


def test_a_client_without_a_coordinator_is_never_stuck():
    clock = _Clock()
    dog = GroupWatchdog(limit_s=1, clock=clock)
    clock.t = 1000
    assert not dog.stuck(SimpleNamespace())


class _StuckOnceAfterACommit:
    """Reports the consumer stuck once, after the first committed batch (mid-stream)."""

    def __init__(self, processor):
        self.processor, self.limit_s, self.fired = processor, 0.0, 0

    def stuck(self, consumer) -> bool:
        if self.fired or (self.processor.metrics.registry.get_sample_value("stream_committed_total") or 0) < 1:
            return False
        self.fired += 1
        return True

    def reset(self) -> None:
        pass


@pytest.mark.slow
def test_a_replaced_consumer_resumes_from_the_committed_offsets(kafka_broker, topics, feast_world, tmp_path):
    from kafka import KafkaProducer

    from services.stream.app import build

    n = 3_000
    events = make_events(n, seed=3)
    p = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all", linger_ms=20)
    for e in events:
        p.send(topics["interactions"], key=key_of(e), value=encode(e))
    p.flush()
    p.close()
    total = sum(end_offsets(kafka_broker.bootstrap, topics["interactions"]).values())
    assert total == n

    cfg = stream_config(kafka_broker, topics, feast_world, tmp_path / "lake", batch_size=200)
    app = build(cfg)
    first = app.consumer
    app.processor.watchdog = _StuckOnceAfterACommit(app.processor)
    stop = threading.Event()
    thread = threading.Thread(target=app.processor.run, args=(stop,), daemon=True)
    thread.start()
    done = lambda: sum(committed_offsets(kafka_broker.bootstrap, cfg.group_id, topics["interactions"]).values())  # noqa: E731
    try:
        wait_for(lambda: done() == total, 240, "every offset committed", every_s=0.2)
    finally:
        stop.set()
        thread.join(timeout=30)
        app.close()
    assert not thread.is_alive()
    assert app.processor.watchdog.fired == 1
    assert app.consumer is not first  # the processor really runs on a new consumer
    assert app.metrics.registry.get_sample_value("stream_consumer_restarts_total") == 1
    lake = read_lake(tmp_path / "lake")
    assert len(lake) == n and set(lake["event_id"]) == {e.event_id for e in events}
