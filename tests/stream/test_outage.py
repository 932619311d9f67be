"""Redis stopped mid-stream: nothing committed past the last written event; Redis back: catch up, exact."""

from __future__ import annotations

import pytest

from minirec.events import encode, key_of
from minirec.infra.process import free_port
from minirec.infra.redis_server import redis_server as make_redis
from tests.stream.conftest import (
    Subprocess,
    assert_online_matches_lake,
    committed_offsets,
    make_feast_world,
    read_lake,
    stream_config,
    wait_for,
)
from tests.stream.test_crash import make_events

N = 2000  # per phase


def produce_all(bootstrap: str, topic: str, events) -> None:
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    for e in events:
        p.send(topic, key=key_of(e), value=encode(e))
    p.flush()
    p.close()


@pytest.mark.slow
def test_redis_down_stalls_without_committing_then_catches_up(kafka_broker, topics, offline_tables, tmp_path):
    # a private Redis (append-only file on) this test may stop and restart on the same port
    redis = make_redis(tmp_path / "redis", "127.0.0.1", free_port(), persist=True)
    redis.start()
    proc = None
    try:
        world = make_feast_world(tmp_path, offline_tables, "127.0.0.1", redis.ports[0])
        events = make_events(2 * N, seed=3)
        first, second = events[:N], events[N:]
        cfg = stream_config(kafka_broker, topics, world, tmp_path / "lake", batch_size=200)
        topic = topics["interactions"]
        committed = lambda: committed_offsets(kafka_broker.bootstrap, cfg.group_id, topic)  # noqa: E731

        produce_all(kafka_broker.bootstrap, topic, first)
        proc = Subprocess(cfg, tmp_path / "stream.log")
        wait_for(lambda: sum(committed().values()) == N, 180, "phase 1 committed", every_s=0.2)
        before = committed()

        redis.stop()
        produce_all(kafka_broker.bootstrap, topic, second)
        wait_for(lambda: proc.metric("stream_sink_errors_total", sink="redis") >= 3, 60,
                 "three failed Redis attempts (retried)", every_s=0.2)
        assert committed() == before, "offsets moved while Redis was down"
        assert proc.proc.poll() is None, "the processor died instead of stalling:\n" + proc.tail()

        redis.start()
        wait_for(lambda: sum(committed().values()) == 2 * N, 120, "catch-up after Redis came back", every_s=0.2)
        assert proc.terminate() == 0, proc.tail()

        lake = read_lake(tmp_path / "lake")
        assert len(lake) == 2 * N and lake["event_id"].is_unique
        assert_online_matches_lake(world, lake)
    finally:
        if proc is not None:
            proc.cleanup()
        redis.stop()
