"""The processor follows topic metadata it did not see at start-up (real Kafka, Redis and Feast).

kafka-python rebalances a group only when a metadata refresh shows partitions its last assignment
did not have. A topic it asked for and the broker did not know yet is retried at once (an error
response), but partitions added to a known topic are seen only at the next periodic refresh:
every 300 s by the client's default, every METADATA_MAX_AGE_MS with services.stream.app's setting.
The same periodic refresh is what ends a join made on metadata that listed no partitions (the CI
flake where a test waited 120 s for 9 partitions, with "No partition metadata" warnings)."""

from __future__ import annotations

import threading
import time
import uuid

from minirec.infra.kafka import create_topics
from services.stream.app import METADATA_MAX_AGE_MS, build
from tests.stream.conftest import stream_config, wait_for


def _start(cfg):
    app = build(cfg)
    stop = threading.Event()
    thread = threading.Thread(target=app.processor.run, args=(stop,), daemon=True)
    thread.start()
    return app, stop, thread


def _stop(app, stop, thread) -> None:
    stop.set()
    thread.join(timeout=30)
    app.close()
    assert not thread.is_alive()


def _names(prefix: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {k: f"{prefix}-{k}-{tag}" for k in ("interactions", "impressions", "exposures", "deadletter")}


def test_partitions_added_to_a_topic_are_consumed_within_a_few_refresh_periods(kafka_broker, feast_world,
                                                                               tmp_path):
    from kafka.admin import KafkaAdminClient, NewPartitions

    names = _names("grow")
    create_topics(kafka_broker.bootstrap, list(names.values()), partitions=3)
    cfg = stream_config(kafka_broker, names, feast_world, tmp_path / "lake")
    app, stop, thread = _start(cfg)
    try:
        n = 3 * len(cfg.topics)
        wait_for(lambda: len(app.consumer.assignment()) == n, 120, f"the consumer to own {n} partitions")
        admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
        try:
            admin.create_partitions({names["interactions"]: NewPartitions(total_count=6)})
        finally:
            admin.close()
        t0 = time.monotonic()
        # a few refresh periods for the refresh, the rejoin and the sync; the client's 300 s default fails
        limit_s = 6 * METADATA_MAX_AGE_MS / 1000
        wait_for(lambda: len(app.consumer.assignment()) == n + 3, limit_s, f"the consumer to own {n + 3} partitions")
        assert time.monotonic() - t0 < limit_s
    finally:
        _stop(app, stop, thread)


def test_a_processor_started_before_its_topics_exist_gets_them(kafka_broker, feast_world, tmp_path):
    names = _names("late")
    cfg = stream_config(kafka_broker, names, feast_world, tmp_path / "lake")
    app, stop, thread = _start(cfg)
    try:
        wait_for(lambda: app.consumer._coordinator.stable(), 60, "the consumer's group to settle")
        assert app.consumer.assignment() == set()  # nothing to own yet
        create_topics(kafka_broker.bootstrap, list(names.values()), partitions=3)
        n = 3 * len(cfg.topics)
        wait_for(lambda: len(app.consumer.assignment()) == n, 6 * METADATA_MAX_AGE_MS / 1000,
                 f"the consumer to own {n} partitions after the topics were created")
    finally:
        _stop(app, stop, thread)
