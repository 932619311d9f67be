"""The processor against real Kafka and Redis (in-process thread): features, seen-set, lake, dead letters."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from minirec.events import DeadLetter, Exposure, Impression, Interaction, encode, key_of
from minirec.features.seen import seen_key
from minirec.features.tables import build_user_realtime
from tests.stream.conftest import InProcess, read_lake, stream_config, wait_for

BOUND_S = 20.0  # generous on 2 shared cores; the benchmark measures the real freshness


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for key, value in messages:
        p.send(topic, key=key, value=value)
    p.flush()
    p.close()


def events_msgs(events) -> list[tuple[bytes, bytes]]:
    return [(key_of(e), encode(e)) for e in events]


def online_row(world, uid: int) -> dict:
    df = world.online([uid])
    return df.iloc[0].to_dict()


def test_interaction_reaches_online_features_seen_set_and_lake(kafka_broker, topics, feast_world, tmp_path,
                                                               redis_server):
    import redis

    now = datetime.now(UTC).replace(microsecond=0)
    uid = 5
    clicks = [Interaction(user_id=uid, item_id=3, action="click", event_time=now - timedelta(hours=2)),
              Interaction(user_id=uid, item_id=7, action="rating", rating=4.0,
                          event_time=now - timedelta(minutes=90)),
              Interaction(user_id=uid, item_id=3, action="click", event_time=now - timedelta(minutes=1)),
              Interaction(user_id=uid + 1, item_id=9, action="click", event_time=now)]
    others = [Impression(user_id=uid, request_id="r1", items=[3, 7], scores=[0.5, 0.4], model_version="m"),
              Exposure(user_id=uid, experiment="exp", variant="treatment")]
    lake = tmp_path / "lake"
    proc = InProcess(stream_config(kafka_broker, topics, feast_world, lake))
    # the histogram has no labels; its value may be shared with earlier in-process processors when
    # prometheus-client runs in multiprocess mode (importing feast sets PROMETHEUS_MULTIPROC_DIR), so count from here
    fresh0 = proc.metric("stream_freshness_seconds_count")
    try:
        produce(kafka_broker.bootstrap, topics["interactions"], events_msgs(clicks))
        produce(kafka_broker.bootstrap, topics["impressions"], events_msgs(others[:1]))
        produce(kafka_broker.bootstrap, topics["exposures"], events_msgs(others[1:]))
        row = wait_for(lambda: (r := online_row(feast_world, uid))["u_cnt_24h"] == 3 and r, BOUND_S,
                       "user 5's online row to count 3 events")
        assert list(row["last_items"]) == [3, 7]  # newest first, distinct
        assert row["u_cnt_1h"] == 1  # only the last click is within (t - 1 h, t]
        client = redis.Redis(host=redis_server.host, port=redis_server.port)
        assert {int(x) for x in client.smembers(seen_key(feast_world.project, uid))} == {3, 7}
        client.close()

        # the online row equals the offline definition computed on the lake
        wait_for(lambda: len(read_lake(lake)) == 4, BOUND_S, "4 interactions in the lake")
        inter = read_lake(lake)
        offline = build_user_realtime(inter, np.array([uid, uid + 1])).groupby("user_id").last()
        assert list(offline.loc[uid, "last_items"]) == list(row["last_items"])
        assert offline.loc[uid, ["u_cnt_1h", "u_cnt_24h"]].tolist() == [row["u_cnt_1h"], row["u_cnt_24h"]]
        wait_for(lambda: len(read_lake(lake, "impressions")) == 1 and len(read_lake(lake, "exposures")) == 1,
                 BOUND_S, "the impression and the exposure in the lake")
        assert read_lake(lake, "impressions")["items"].iloc[0].tolist() == [3, 7]
        assert (lake / "interactions" / f"date={now.date().isoformat()}").is_dir()
        assert proc.metric("stream_freshness_seconds_count") - fresh0 == 4

        # a replay of the same events (same event_ids) changes neither the lake nor the counts
        produce(kafka_broker.bootstrap, topics["interactions"], events_msgs(clicks))
        # >= 4: a rebalance under load may replay a batch once more, which is counted as duplicates too
        wait_for(lambda: proc.metric("stream_events_total", topic=topics["interactions"], outcome="duplicate") >= 4,
                 BOUND_S, "4 duplicates counted")
        assert proc.metric("stream_freshness_seconds_count") - fresh0 == 4  # replays are not observed again
        assert len(read_lake(lake)) == 4
        row2 = online_row(feast_world, uid)
        assert (row2["u_cnt_1h"], row2["u_cnt_24h"], list(row2["last_items"])) == (1, 3, [3, 7])
    finally:
        proc.stop()


def read_topic(bootstrap: str, topic: str, n: int, timeout_s: float) -> list[bytes]:
    from kafka import KafkaConsumer

    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                      consumer_timeout_ms=500, enable_auto_commit=False)
    out: list[bytes] = []
    try:
        wait_for(lambda: out.extend(m.value for m in c) or len(out) >= n, timeout_s, f"{n} messages on {topic}")
    finally:
        c.close()
    return out


@pytest.mark.parametrize("batch_size", [1000, 1], ids=["one-batch", "one-per-batch"])
def test_poison_messages_are_dead_lettered_and_the_rest_flows(kafka_broker, topics, feast_world, tmp_path,
                                                              batch_size):
    now = datetime.now(UTC)
    good = [Interaction(user_id=11, item_id=1 + k, action="click", event_time=now + timedelta(seconds=k))
            for k in range(4)]
    bad = {
        b"{not json": "bad_json",
        json.dumps({"user_id": 11, "item_id": 2, "action": "purchase"}).encode(): "schema",
        json.dumps({"user_id": 11, "item_id": 2, "action": "click", "event_time": "2026-12-02T10:00:00"})
        .encode(): "schema",  # no UTC offset
        encode(Interaction(user_id=11, item_id=10_000, action="click")): "unknown_id",  # not in the catalogue
    }
    msgs = []
    for g, (raw, _) in zip(good, bad.items(), strict=True):  # good, bad, good, bad, ...
        msgs += [(b"11", encode(g)), (b"11", raw)]
    lake = tmp_path / "lake"
    proc = InProcess(stream_config(kafka_broker, topics, feast_world, lake, batch_size=batch_size))
    try:
        from kafka import KafkaProducer

        p = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
        for key, value in msgs:
            p.send(topics["interactions"], key=key, value=value, partition=0)  # one partition: fixed order
        p.flush()
        p.close()
        letters = [DeadLetter.model_validate_json(m)
                   for m in read_topic(kafka_broker.bootstrap, topics["deadletter"], 4, BOUND_S)]
        assert {dl.original: dl.reason for dl in letters} == bad
        assert sorted(dl.offset for dl in letters) == [1, 3, 5, 7]
        assert all(dl.source_topic == topics["interactions"] and dl.detail for dl in letters)
        wait_for(lambda: online_row(feast_world, 11)["u_cnt_24h"] == 4, BOUND_S, "the 4 good events online")
        assert sorted(read_lake(lake)["event_id"]) == sorted(g.event_id for g in good)
        # at least once: a rebalance between send and commit replays a batch and re-sends its letter
        assert proc.metric("stream_deadlettered_total", reason="schema") >= 2
        assert proc.metric("stream_deadlettered_total", reason="bad_json") >= 1
        assert proc.metric("stream_deadlettered_total", reason="unknown_id") >= 1
        assert proc.metric("stream_events_total", topic=topics["interactions"], outcome="applied") == 4
    finally:
        proc.stop()
