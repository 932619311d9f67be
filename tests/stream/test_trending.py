"""Item trending counts: the incremental Lua state equals the recount from the events, whatever the
batching, order or replays (real Redis), and through the processor (real Kafka + Redis) after a replay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from minirec.events import Interaction
from services.stream.trending import TrendingState, read_trending, recount
from tests.stream.conftest import N_ITEMS, InProcess, read_lake, stream_config, wait_for
from tests.stream.test_processor import events_msgs, produce


def random_events(n: int, seed: int, span_h: float = 72.0) -> list[Interaction]:
    """n clicks on N_ITEMS items at random times over `span_h` hours (so both windows cut)."""
    rng = np.random.default_rng(seed)
    t0 = datetime.now(UTC) - timedelta(hours=span_h)
    return [Interaction(user_id=int(u), item_id=int(i), action="click", event_time=t0 + timedelta(seconds=float(s)))
            for u, i, s in zip(rng.integers(1, 50, n), rng.integers(1, N_ITEMS + 1, n),
                               np.sort(rng.uniform(0, span_h * 3600, n)), strict=True)]


def as_frame(events: list[Interaction]):
    import pandas as pd

    return pd.DataFrame({"item_id": [e.item_id for e in events], "event_id": [e.event_id for e in events],
                         "event_timestamp": pd.to_datetime([e.event_time for e in events], utc=True)})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counts_equal_the_recount_after_every_batch(redis_server, seed):
    """Mostly in time order with late events, replayed batches and duplicates inside a batch."""
    import redis

    rng = np.random.default_rng(100 + seed)
    events = random_events(3000, seed)
    order = np.argsort(np.arange(len(events)) + rng.normal(0, 40, len(events)))  # late arrivals up to ~hours
    stream = [events[k] for k in order]
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    state = TrendingState(client, f"tr{uuid.uuid4().hex[:8]}")
    project = state.keys[0].split(":rt:")[0]
    applied: list[Interaction] = []
    slid_1h = slid_24h = False
    pos = 0
    while pos < len(stream):
        batch = stream[pos:pos + int(rng.integers(1, 200))]
        pos += len(batch)
        if rng.random() < 0.3:  # a replay of the previous batch's events (at-least-once) rides along
            batch = batch + applied[-int(rng.integers(1, 50)):]
        batch = batch + batch[:3]  # and the same event twice in one batch
        state.apply(batch)
        applied.extend(batch)
        got, want = read_trending(client, project), recount(as_frame(applied))
        assert got == want, f"after {pos} events"
        slid_1h |= sum(want["1h"].values()) < sum(want["24h"].values())
        slid_24h |= sum(want["24h"].values()) < len({e.event_id for e in applied})
    assert slid_1h and slid_24h  # both windows really dropped events
    top = read_trending(client, project, top=3)["24h"]  # the 3 most interacted items (ties in any order)
    assert sorted(top.values()) == sorted(want["24h"].values())[-3:]
    client.close()


def test_processor_trending_equals_the_lake_recount_after_a_replay(kafka_broker, topics, feast_world, tmp_path,
                                                                   redis_server):
    import redis

    events = random_events(2000, seed=7)
    lake = tmp_path / "lake"
    proc = InProcess(stream_config(kafka_broker, topics, feast_world, lake, batch_size=200))
    try:
        produce(kafka_broker.bootstrap, topics["interactions"], events_msgs(events))
        produce(kafka_broker.bootstrap, topics["interactions"], events_msgs(events[::3]))  # a replay
        replayed = len(events[::3])
        wait_for(lambda: proc.metric("stream_events_total", topic=topics["interactions"], outcome="duplicate")
                 == replayed, 120, f"{replayed} duplicates processed")
    finally:
        proc.stop()
    inter = read_lake(lake)
    assert len(inter) == len(events) and inter["event_id"].is_unique
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    got = read_trending(client, feast_world.project)
    client.close()
    want = recount(inter)
    assert got == want
    assert 0 < sum(want["1h"].values()) < sum(want["24h"].values()) < len(events)  # both windows cut
