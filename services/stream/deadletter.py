"""Poison messages -> the `deadletter` topic, with the reason and the original bytes.

    bad message --DeadLetter(reason, detail, original bytes as base64)--> KafkaProducer --> deadletter

Sent before the batch's offsets are committed and flushed (acks=all), so a
poison message is never committed without its dead letter on the broker. A
replay of an uncommitted batch may send a dead letter twice (at-least-once;
consumers of `deadletter` key on source_topic/partition/offset).
"""

from __future__ import annotations

from typing import Any

from minirec.events import DeadLetter, encode

REASONS = ("bad_json", "schema", "unknown_id")


def dead_letter(record: Any, reason: str, detail: str) -> DeadLetter:
    """A DeadLetter for one kafka-python ConsumerRecord."""
    return DeadLetter(source_topic=record.topic, partition=record.partition, offset=record.offset,
                      reason=reason, detail=detail[:1000], original=record.value or b"")


class DeadLetterSink:
    def __init__(self, producer: Any, topic: str):
        self.producer = producer  # kafka.KafkaProducer
        self.topic = topic

    def send(self, letters: list[tuple[bytes | None, DeadLetter]], timeout_s: float = 10.0) -> None:
        """Send (key, letter) pairs and wait until the broker has them; raises KafkaError otherwise."""
        if not letters:
            return
        futures = [self.producer.send(self.topic, key=key, value=encode(dl)) for key, dl in letters]
        self.producer.flush(timeout=timeout_s)
        for f in futures:
            f.get(timeout=timeout_s)  # raises the send error, if any
