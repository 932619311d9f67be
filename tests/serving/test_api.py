"""Contract tests over HTTP against a running `bentoml serve` (real Redis, real Kafka)."""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from services.recommender.schemas import samples
from tests.serving.conftest import (
    heaviest_user,
    metric_sum,
    metric_values,
    permuted_bundle,
    register_model,
    serve,
    service_env,
    world_bundle_dir,
)


def _check_items(items, k):
    ids = [it["item_id"] for it in items]
    assert len(ids) <= k
    assert all(i > 0 for i in ids), "a -1 (FAISS padding) or invalid id was returned"
    assert len(set(ids)) == len(ids), "duplicate ids"
    assert all(isinstance(it["title"], str) and it["title"] for it in items)
    scores = [it["score"] for it in items]
    assert scores == sorted(scores, reverse=True)
    return ids


def test_recommend_contract(recommender, world):
    uid = int(world.users().sort_values("n").iloc[-1]["user_id"])
    r = recommender.post("/recommend", {"user_id": uid, "k": 7, "timings": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"items", "model_version", "variant", "request_id", "fallback", "exclude_seen_honoured",
                         "ranker_fallback", "timings_ms"}
    assert body["exclude_seen_honoured"] is True and body["ranker_fallback"] is False
    assert len(_check_items(body["items"], 7)) == 7
    assert body["model_version"] == world.tags[0] and body["variant"] == "control" and body["fallback"] is None
    assert set(body["timings_ms"]) >= {"features", "encode", "retrieve", "rank", "filter", "total"}
    assert body["timings_ms"]["rank"] > 0  # the world's bundle has a ranker (loadtests.world)
    assert body["timings_ms"]["total"] > 0
    again = recommender.post("/recommend", {"user_id": uid, "k": 7}).json()
    assert again["timings_ms"] is None and again["request_id"] != body["request_id"]
    assert [i["item_id"] for i in again["items"]] == [i["item_id"] for i in body["items"]]  # deterministic


def test_sample_payload_is_served(recommender):
    for name in ("recommend", "recommend_with_timings", "recommend_cold"):
        assert recommender.post("/recommend", samples()[name]).status_code == 200


def test_seen_items_never_returned(recommender, world):
    users = world.users().sort_values("n", ascending=False)["user_id"].astype(int).tolist()[:25]
    hits_when_allowed = 0
    for uid in users:
        seen = world.seen(uid)
        ids = _check_items(recommender.post("/recommend", {"user_id": uid, "k": 100}).json()["items"], 100)
        assert not (set(ids) & seen), f"user {uid} got seen items {set(ids) & seen}"
        raw = recommender.post("/recommend", {"user_id": uid, "k": 100, "exclude_seen": False}).json()["items"]
        hits_when_allowed += len({i["item_id"] for i in raw} & seen)
    assert hits_when_allowed > 0, "the filter is not what removes seen items (none came back unfiltered either)"


def test_k_larger_than_what_is_left_returns_exactly_what_is_left(recommender, world, planted):
    catalogue = {int(i) for i in np.load(world_bundle_dir(world) / "item_ids.npy")}
    left = set(sorted(catalogue - world.seen(heaviest_user(world)))[:7])  # not in the copied history either
    uid = planted(seen=catalogue - left)  # every other film of the catalogue is seen
    body = recommender.post("/recommend", {"user_id": uid, "k": 100}).json()
    assert body["fallback"] is None, body
    ids = _check_items(body["items"], 100)
    assert len(ids) == 7 and set(ids) == left, "k=100 with 7 unseen films left must return exactly those 7"


def test_cold_user_gets_popularity_fallback(recommender):
    a = recommender.post("/recommend", {"user_id": 987654321, "k": 5}).json()
    b = recommender.post("/recommend", {"user_id": 987654322, "k": 5}).json()
    assert a["fallback"] == "cold_start" and len(_check_items(a["items"], 5)) == 5
    assert [i["item_id"] for i in a["items"]] == [i["item_id"] for i in b["items"]]  # the popularity list


@pytest.fixture(scope="module")
def two_arms(world, kafka_broker, impressions_topic, tmp_path_factory):
    """A recommender whose store holds two different models: production (the world's) for control,
    a candidate with a shuffled item-id map for treatment."""
    home = tmp_path_factory.mktemp("two_arms")
    store = home / "models"
    shutil.copytree(world.model_store, store)
    perm = permuted_bundle(world, home / "bundle_b")
    tag = register_model(store, home / "bundle_b", "permuted", stage="candidate")
    env = service_env(world, kafka_bootstrap=kafka_broker.bootstrap, topic=impressions_topic, model_store=store)
    running = serve(home / "svc", env)
    yield running, perm, tag
    running.stop()


def test_each_variant_serves_its_own_model(two_arms, world):
    svc, perm, candidate = two_arms
    uid = heaviest_user(world)
    ask = {"user_id": uid, "k": 10, "exclude_seen": False}
    c = svc.post("/recommend", {**ask, "variant": "control"}).json()
    t = svc.post("/recommend", {**ask, "variant": "treatment"}).json()
    assert (c["variant"], c["model_version"]) == ("control", world.tags[0])
    assert (t["variant"], t["model_version"]) == ("treatment", candidate) and candidate != world.tags[0]
    c_ids, t_ids = [i["item_id"] for i in c["items"]], [i["item_id"] for i in t["items"]]
    assert len(c_ids) == 10 and t_ids != c_ids
    # same towers, other id map: the treatment answer (retrieval only: permuted_bundle drops the ranker)
    # is the control's retrieval order read through its own map. The control ranks its 100 candidates
    # and reports each one's retrieval score beside the ranker's: sorted by it, they are that order.
    c100 = svc.post("/recommend", {**ask, "k": 100, "variant": "control"}).json()["items"]
    by_retrieval = sorted(c100, key=lambda i: -i["retrieval_score"])[:10]
    assert t_ids == [perm[i["item_id"]] for i in by_retrieval]
    assert [i["score"] for i in t["items"]] == [i["retrieval_score"] for i in by_retrieval]
    status = svc.post("/status", {}).json()
    assert status["models"] == {"control": world.tags[0], "treatment": candidate}


def test_similar_items(recommender):
    r = recommender.post("/similar_items", {"item_id": 3, "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    ids = _check_items(body["items"], 5)
    assert len(ids) == 5 and 3 not in ids and body["item_id"] == 3
    missing = recommender.post("/similar_items", {"item_id": 10**12, "k": 5})
    assert missing.status_code == 404 and "item_id" in missing.text


@pytest.mark.parametrize("payload,field", [
    ({"user_id": 1, "k": 0}, "k"),
    ({"user_id": 1, "k": 10**9}, "k"),
    ({"k": 5}, "user_id"),
    ({"user_id": "abc"}, "user_id"),
    ({"user_id": 1, "exclude_seen": "maybe"}, "exclude_seen"),
    ({"user_id": 1, "variant": "blue"}, "variant"),
    ({"user_id": 1, "surprise": 1}, "surprise"),
])
def test_invalid_input_is_a_4xx_naming_the_field(recommender, payload, field):
    r = recommender.post("/recommend", payload)
    assert 400 <= r.status_code < 500, r.text
    assert field in r.text


def test_malformed_json_and_huge_body_are_4xx(recommender):
    r = recommender.client.post("/recommend", content=b'{"user_id": 5', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "json" in r.text.lower()
    big = b'{"user_id": 1, "pad": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    r = recommender.client.post("/recommend", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.text


def test_readiness_and_metrics(recommender, world):
    r = recommender.client.get("/readyz")
    assert r.status_code == 200 and r.json()["ready"] is True and r.json()["degraded"] == [], r.text
    status = recommender.post("/status", {}).json()
    assert status["model"] and status["online_store"] and status["models"]["control"] == world.tags[0]
    recommender.post("/recommend", {"user_id": 987654323})
    text = recommender.metrics()
    assert metric_sum(text, "recommender_online_store_up") == 1
    assert "recommender_impression_queue_depth" in text
    assert metric_values(text, "recommender_model_info")  # labelled with the version
    assert any(world.tags[0] in k for k, v in metric_values(text, "recommender_model_info").items() if v == 1)
    assert metric_sum(text, "recommender_fallbacks_total", 'reason="cold_start"') >= 1
    for stage in ("features", "encode", "retrieve", "rank", "filter"):
        assert metric_sum(text, "recommender_stage_seconds_count", f'stage="{stage}"') > 0
    assert metric_sum(text, "recommender_request_seconds_count", 'endpoint="/recommend"') > 0
    assert "recommender_ranker_failures_total" in text


def test_impression_reaches_kafka(recommender, kafka_broker, impressions_topic, world):
    from kafka import KafkaConsumer

    uid = int(world.users().iloc[1]["user_id"])
    body = recommender.post("/recommend", {"user_id": uid, "k": 4}).json()
    consumer = KafkaConsumer(impressions_topic, bootstrap_servers=kafka_broker.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=1000,
                             group_id=f"t-{body['request_id'][:8]}")
    found = None
    deadline = time.monotonic() + 30
    try:
        while found is None and time.monotonic() < deadline:
            for msg in consumer:
                ev = json.loads(msg.value)
                if ev["request_id"] == body["request_id"]:
                    found = (msg.key, ev)
                    break
    finally:
        consumer.close()
    assert found is not None, "no impression event for the request on Kafka within 30 s"
    key, ev = found
    assert key == str(uid).encode() and ev["user_id"] == uid
    assert ev["items"] == [i["item_id"] for i in body["items"]]
    assert ev["scores"] == [i["score"] for i in body["items"]]
    assert ev["model_version"] == body["model_version"] and ev["variant"] == "control"
    assert ev["schema_version"] == 1 and ev["event_id"] and ev["event_time"]
    assert metric_sum(recommender.metrics(), "recommender_impressions_sent_total") >= 1


def test_batches_larger_than_one_under_concurrent_load(recommender, world):
    users = world.users()["user_id"].astype(int).tolist()

    def one(i):
        with httpx.Client(base_url=recommender.url, timeout=30) as c:
            return [c.post("/recommend", json={"user_id": users[(i * 7 + j) % len(users)]}).status_code
                    for j in range(10)]

    with ThreadPoolExecutor(32) as pool:
        codes = [c for batch in pool.map(one, range(32)) for c in batch]
    assert codes.count(200) == len(codes), {c: codes.count(c) for c in set(codes)}
    hist = metric_values(recommender.metrics(), "bentoml_service_adaptive_batch_size_bucket")
    le1 = sum(v for k, v in hist.items() if 'le="1.0"' in k and "recommend_batch" in k)
    total = sum(v for k, v in hist.items() if 'le="+Inf"' in k and "recommend_batch" in k)
    assert total > 0 and total - le1 > 0, f"no batch larger than 1: {total} dispatches, {le1} of size 1"
