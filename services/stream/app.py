"""Wiring: build the consumer, producer, Redis client, Feast store and writers from a StreamConfig."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from services.stream.consumer import Processor
from services.stream.deadletter import DeadLetterSink
from services.stream.lake import LakeWriter
from services.stream.metrics import StreamMetrics
from services.stream.online import OnlineWriter, open_push_store
from services.stream.settings import StreamConfig

log = logging.getLogger("stream")


def load_known_items(cfg: StreamConfig) -> set[int] | None:
    """Catalogue item ids for the unknown_id check; None (no check) when the table is absent."""
    if not cfg.items_table.exists():
        log.warning("no items table at %s: interactions are not checked for unknown item ids", cfg.items_table)
        return None
    import pyarrow.parquet as pq

    return set(pq.read_table(cfg.items_table, columns=["item_id"]).column("item_id").to_pylist())


@dataclass
class App:
    processor: Processor
    producer: Any
    redis: Any
    metrics: StreamMetrics

    @property
    def consumer(self) -> Any:
        """The processor's current consumer (the watchdog may have replaced the first one)."""
        return self.processor.consumer

    def close(self) -> None:
        """Close without committing anything more (the last batch committed or is replayed)."""
        self.consumer.close(autocommit=False)
        self.producer.close(timeout=5)
        self.redis.close()


def build(cfg: StreamConfig, metrics: StreamMetrics | None = None) -> App:
    import redis
    from kafka import KafkaConsumer, KafkaProducer

    metrics = metrics or StreamMetrics()
    # short timeouts: a dead Redis must fail the attempt quickly so the retry loop takes over
    client = redis.Redis(host=cfg.redis_host, port=cfg.redis_port, socket_timeout=2.0,
                         socket_connect_timeout=2.0)
    store = open_push_store(cfg.feature_repo, cfg.feast_project, cfg.redis_host, cfg.redis_port)

    def new_consumer() -> KafkaConsumer:
        return KafkaConsumer(*cfg.topics, bootstrap_servers=cfg.bootstrap, group_id=cfg.group_id,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             max_poll_records=cfg.batch_size, fetch_max_wait_ms=min(100, cfg.batch_max_wait_ms),
                             client_id="minirec-stream")

    producer = KafkaProducer(bootstrap_servers=cfg.bootstrap, acks="all", linger_ms=5,
                             client_id="minirec-stream-deadletter")
    processor = Processor(cfg, new_consumer(), LakeWriter(cfg.lake_dir),
                          OnlineWriter(client, store, cfg.feast_project),
                          DeadLetterSink(producer, cfg.topic_deadletter), metrics, load_known_items(cfg),
                          new_consumer=new_consumer)
    return App(processor, producer, client, metrics)
