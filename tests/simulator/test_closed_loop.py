"""The loop closes: a click sent to Kafka goes through the stream processor into the user's seen-set,
and the recommender's next answer for that user leaves the clicked item out (real Kafka, Redis, services)."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaProducer

from minirec.events import Interaction, encode, key_of
from minirec.features.seen import seen_key
from minirec.infra.kafka import create_topics
from tests.stream.conftest import FeastWorld, InProcess, stream_config, wait_for

pytestmark = pytest.mark.infra


def test_a_clicked_item_is_excluded_from_the_next_recommendation(world, recommender, kafka_broker, redis_server,
                                                                 tmp_path):
    import redis

    tag = uuid.uuid4().hex[:8]
    topics = {k: f"{k}-{tag}" for k in ("interactions", "impressions", "exposures", "deadletter")}
    create_topics(kafka_broker.bootstrap, list(topics.values()), partitions=3)
    fw = FeastWorld(repo=world.feature_repo, project=world.project, redis_host=world.redis_host,
                    redis_port=world.redis_port, items_table=world.data_dir / "items.parquet")
    users = world.users().sort_values("n")
    uid = int(users["user_id"].iloc[len(users) // 2])  # a typical user, not the heaviest
    before = recommender.post("/recommend", {"user_id": uid, "k": 10, "exclude_seen": True})
    assert before.status_code == 200, before.text
    clicked = int(before.json()["items"][0]["item_id"])
    client = redis.Redis(host=world.redis_host, port=world.redis_port)
    assert not client.sismember(seen_key(world.project, uid), clicked)  # served: so not seen yet

    proc = InProcess(stream_config(kafka_broker, topics, fw, tmp_path / "lake"))
    try:
        producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
        event = Interaction(user_id=uid, item_id=clicked, action="click", request_id=before.json()["request_id"],
                            position=0, variant="control")
        producer.send(topics["interactions"], key=key_of(event), value=encode(event)).get(timeout=30)
        producer.close()
        wait_for(lambda: client.sismember(seen_key(world.project, uid), clicked), 60,
                 f"item {clicked} in user {uid}'s seen-set")
    finally:
        proc.stop()
        client.close()
    after = recommender.post("/recommend", {"user_id": uid, "k": 10, "exclude_seen": True})
    assert after.status_code == 200, after.text
    assert clicked not in [int(x["item_id"]) for x in after.json()["items"]]
