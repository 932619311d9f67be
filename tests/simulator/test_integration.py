"""The simulator against a real recommender (trained small world) and real Kafka."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest

from minirec.events import Interaction, decode
from minirec.infra.kafka import create_topics
from services.simulator.simulate import simulate
from tests.simulator.conftest import consume_all

pytestmark = pytest.mark.infra


def run(world, recommender, bootstrap: str, topic: str, **kw):
    args = dict(data_dir=world.data_dir, recommender_url=recommender.url, kafka_bootstrap=bootstrap, topic=topic,
                seed=7, max_sessions=200, speedup=1e9, noise=0.05, ratings=True, concurrency=8, progress=False,
                exclude_seen=False)  # the serving world backfills seen-sets from its whole lake, held-out period too
    return simulate(**{**args, **kw})


def fresh_topic(bootstrap: str) -> str:
    name = f"interactions-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, [name], partitions=3)
    return name


def test_same_seed_sends_the_same_events_and_they_decode_as_interactions(world, recommender, kafka_broker):
    seqs, request_ids = [], []
    for _ in range(2):
        topic = fresh_topic(kafka_broker.bootstrap)
        m = run(world, recommender, kafka_broker.bootstrap, topic)
        assert m.errors == {} and m.requests == m.sessions == 200
        assert m.clicks > 20 and m.ratings > 0  # enough events for the comparison to mean something
        raw = consume_all(kafka_broker.bootstrap, topic, m.events)
        events = [decode(Interaction, r) for r in raw]
        assert len(events) == m.events == m.clicks + m.ratings
        assert all(e.request_id and e.position is not None and 0 <= e.position < 10 for e in events)
        assert all(e.variant == "control" for e in events)  # no assignment service: what the recommender served
        assert all((e.rating is not None) == (e.action == "rating") for e in events)
        seqs.append(sorted((e.user_id, e.item_id, e.action, e.position) for e in events))
        request_ids.append({e.request_id for e in events})
    assert seqs[0] == seqs[1]
    assert not request_ids[0] & request_ids[1]  # two real runs (new requests), same behaviour
    other = sorted((e.user_id, e.item_id, e.action, e.position) for e in _events_of_seed(world, recommender,
                                                                                          kafka_broker, 8))
    assert other != seqs[0]


def _events_of_seed(world, recommender, kafka_broker, seed: int) -> list[Interaction]:
    topic = fresh_topic(kafka_broker.bootstrap)
    m = run(world, recommender, kafka_broker.bootstrap, topic, seed=seed)
    return [decode(Interaction, r) for r in consume_all(kafka_broker.bootstrap, topic, m.events)]


def test_clicks_are_keyed_by_user(world, recommender, kafka_broker):
    from kafka import KafkaConsumer, TopicPartition

    topic = fresh_topic(kafka_broker.bootstrap)
    m = run(world, recommender, kafka_broker.bootstrap, topic, max_sessions=60, ratings=False)
    consume_all(kafka_broker.bootstrap, topic, m.events)
    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, enable_auto_commit=False)
    parts = [TopicPartition(topic, p) for p in range(3)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    seen: dict[int, set[int]] = {}
    got = 0
    deadline = time.monotonic() + 60
    while got < m.events and time.monotonic() < deadline:
        for tp, batch in consumer.poll(timeout_ms=1000).items():
            for msg in batch:
                assert msg.key == str(decode(Interaction, msg.value).user_id).encode()
                seen.setdefault(int(msg.key), set()).add(tp.partition)
                got += 1
    consumer.close()
    assert got == m.events
    assert all(len(p) == 1 for p in seen.values())  # one user, one partition


def test_kafka_down_is_counted_not_fatal(world, recommender):
    m = run(world, recommender, "127.0.0.1:9", "interactions", max_sessions=40)
    assert m.requests == 40 and m.events > 0
    assert m.errors["kafka"] == m.events and "make up" in m.error_hints["kafka"]


def test_fallbacks_are_counted(world, recommender):
    m = run(world, recommender, "", "", dry_run=True, scenario="new_users", max_sessions=100)
    assert m.errors == {} and m.fallbacks["cold_start"] == Counter(m.fallbacks)["cold_start"] > 0
