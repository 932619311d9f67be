"""Apache Kafka with kafka-python: keyed produce, group consume, commit, restart.

At-least-once with manual commits after processing: a consumer that restarts
resumes at the committed offset, so across the restart nothing is read twice
(we commit exactly what we processed) and nothing is lost.
"""

from __future__ import annotations

import json
import time

from kafka import KafkaConsumer, KafkaProducer

N = 10_000


def produce(bootstrap: str, topic: str, n: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                             key_serializer=str.encode, value_serializer=lambda v: json.dumps(v).encode())
    for i in range(n):
        producer.send(topic, key=f"user-{i % 97}", value={"event_id": i, "user_id": i % 97})
    producer.flush(timeout=60)
    producer.close()


def consumer_for(bootstrap: str, topic: str, group: str) -> KafkaConsumer:
    return KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                         auto_offset_reset="earliest", enable_auto_commit=False,
                         value_deserializer=lambda b: json.loads(b), max_poll_records=500)


def consume(consumer: KafkaConsumer, stop_after: int, timeout_s: float = 60.0) -> list:
    """Poll until at least `stop_after` records (or the topic runs dry); commit what we got."""
    got = []
    deadline = time.monotonic() + timeout_s
    idle = 0
    while len(got) < stop_after and time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=1000)
        records = [r for rs in batch.values() for r in rs]
        got.extend(records)
        if records:
            consumer.commit()  # commit only what was processed
            idle = 0
        else:
            idle += 1
            if idle >= 5 and got:
                break
    return got


def test_keyed_events_land_in_one_partition_per_key(kafka_broker, kafka_topic):
    produce(kafka_broker.bootstrap, kafka_topic, 500)
    c = consumer_for(kafka_broker.bootstrap, kafka_topic, "keys")
    recs = consume(c, 500)
    c.close()
    partitions_per_key: dict[bytes, set] = {}
    for r in recs:
        partitions_per_key.setdefault(r.key, set()).add(r.partition)
    assert len(recs) == 500
    assert all(len(p) == 1 for p in partitions_per_key.values())
    assert len({r.partition for r in recs}) > 1  # keys spread over the 3 partitions


def test_commit_restart_no_duplicates_no_loss(kafka_broker, kafka_topic):
    produce(kafka_broker.bootstrap, kafka_topic, N)

    first = consumer_for(kafka_broker.bootstrap, kafka_topic, "group-a")
    part1 = consume(first, N // 2)
    first.close()  # the "crash" point: everything up to here was committed
    assert N // 2 <= len(part1) < N

    second = consumer_for(kafka_broker.bootstrap, kafka_topic, "group-a")
    part2 = consume(second, N - len(part1))
    second.close()

    ids1 = [r.value["event_id"] for r in part1]
    ids2 = [r.value["event_id"] for r in part2]
    assert len(set(ids1) & set(ids2)) == 0, "an event was delivered twice across the restart"
    assert sorted(ids1 + ids2) == list(range(N)), "an event was lost across the restart"

    other = consumer_for(kafka_broker.bootstrap, kafka_topic, "group-b")
    all_again = consume(other, N)
    other.close()
    assert sorted(r.value["event_id"] for r in all_again) == list(range(N))
