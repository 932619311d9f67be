"""Simulator fixtures: the serving tests' trained world and real recommender (tests/serving/conftest.py),
re-exported so a simulator session builds them once, plus a consumer helper for the topic."""

from __future__ import annotations

import time

from tests.serving.conftest import impressions_topic, recommender, serve, service_env, world  # noqa: F401

__all__ = ["consume_all", "impressions_topic", "recommender", "serve", "service_env", "world"]


def consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0) -> list[bytes]:
    """Every message value of `topic` from the beginning; waits (with a deadline) until `expected` arrived."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=1000)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        out: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                out.extend(m.value for m in batch)
        ends = consumer.end_offsets(parts)
        assert sum(ends.values()) == len(out), f"topic holds {sum(ends.values())} messages, consumed {len(out)}"
        return out
    finally:
        consumer.close()
