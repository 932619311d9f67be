"""kill -9 of `python -m services.stream` mid-stream, restart: every event exactly once, exact counts
(the users' online features and the items' trending counts both equal a recount from the lake)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import redis

from minirec.events import Interaction, encode, key_of
from services.stream.trending import read_trending, recount
from tests.stream.conftest import (
    N_ITEMS,
    Subprocess,
    assert_online_matches_lake,
    committed_offsets,
    end_offsets,
    read_lake,
    stream_config,
    wait_for,
)

# As the issue asks. Measured on 2 shared cores at load ~13: 192 s with its session fixtures (Kafka,
# Redis, Feast: ~70 s), ~120 s for the test itself: making and producing the 50,500 events 12 s, the two
# processor starts most of the rest (importing feast alone took 18 s of wall time); the processing is
# the small part (a run with 2,000-event batches spent 6.5 s in 19 batches).
N_EVENTS = 50_000
N_USERS = 200


def make_events(n: int, seed: int = 0) -> list[Interaction]:
    """Per user increasing event times, 0-40 min apart (so the 1 h and 24 h windows both cut)."""
    rng = np.random.default_rng(seed)
    t0 = datetime.now(UTC) - timedelta(days=3)
    clock = {u: t0 for u in range(1, N_USERS + 1)}
    out = []
    for u, item, gap in zip(rng.integers(1, N_USERS + 1, n), rng.integers(1, N_ITEMS + 1, n),
                            rng.integers(1, 2400, n), strict=True):
        clock[int(u)] += timedelta(seconds=int(gap))
        out.append(Interaction(user_id=int(u), item_id=int(item), action="click", event_time=clock[int(u)]))
    return out


@pytest.mark.slow
def test_kill9_mid_stream_then_restart_is_exactly_once(kafka_broker, topics, feast_world, tmp_path):
    from kafka import KafkaProducer

    events = make_events(N_EVENTS)
    p = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all", linger_ms=20, batch_size=256_000)
    for e in events:
        p.send(topics["interactions"], key=key_of(e), value=encode(e))
    for e in events[:500]:  # an at-least-once producer's retries: same event_id again
        p.send(topics["interactions"], key=key_of(e), value=encode(e))
    p.flush()
    p.close()
    total = sum(end_offsets(kafka_broker.bootstrap, topics["interactions"]).values())
    assert total == N_EVENTS + 500

    cfg = stream_config(kafka_broker, topics, feast_world, tmp_path / "lake", batch_size=500)
    done = lambda: sum(committed_offsets(kafka_broker.bootstrap, cfg.group_id, topics["interactions"]).values())  # noqa: E731
    first = Subprocess(cfg, tmp_path / "stream1.log")
    try:
        wait_for(lambda: done() >= total // 4, 300, "a quarter of the events committed", every_s=0.1)
        first.kill9()
        assert done() < total, "the processor finished before the kill: the test proved nothing"
    finally:
        first.cleanup()
    second = Subprocess(cfg, tmp_path / "stream2.log")
    try:
        wait_for(lambda: done() == total, 600, "every offset committed after the restart", every_s=0.2)
        assert second.terminate() == 0, second.tail()  # SIGTERM: clean exit
    finally:
        second.cleanup()

    lake = read_lake(tmp_path / "lake")
    assert len(lake) == N_EVENTS and lake["event_id"].is_unique
    assert set(lake["event_id"]) == {e.event_id for e in events}
    expect = assert_online_matches_lake(feast_world, lake)
    assert expect["u_cnt_24h"].max() > expect["u_cnt_1h"].max() > 0  # the windows really cut
    client = redis.Redis(host=feast_world.redis_host, port=feast_world.redis_port)
    trending = read_trending(client, feast_world.project)
    client.close()
    assert trending == recount(lake)
    assert 0 < sum(trending["1h"].values()) < sum(trending["24h"].values()) < N_EVENTS
