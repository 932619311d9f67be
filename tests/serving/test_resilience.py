"""Outages, rollouts and shutdown against recommenders with their own Redis, Kafka and model store,
so the session servers and the main service are never disturbed.

Each test stands alone: `deps` (Redis holding a copy of the world's keys, a Kafka node) is shared,
and every test that stops a dependency starts it again before it returns; `svc` always serves a
production model; the tests that need a service of their own (no model yet, stopped by SIGTERM)
start one.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from minirec.infra.kafka import create_topics, kafka_server, resolve_jars
from minirec.infra.process import InfraError, free_port, group_members, pid_alive
from minirec.infra.redis_server import redis_server as make_redis
from minirec.infra.stack import kafka_libs
from minirec.settings import get_settings
from tests.conftest import service_unavailable
from tests.serving.conftest import metric_sum, register_model, serve, service_env, world_bundle_dir
from tests.serving.stack import Load, shutdown_balance, start_unready, topic_request_ids, wait_for

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def deps(world, redis_server, tmp_path_factory):
    home = tmp_path_factory.mktemp("resilience")
    rds = make_redis(home / "redis", "127.0.0.1", free_port(), persist=True)  # a restart keeps the keys
    libs = kafka_libs(get_settings())
    try:
        rds.start()
        resolve_jars(libs)
        kafka = kafka_server(home / "kafka", "127.0.0.1", free_port(), free_port(), heap_mb=256, partitions=1,
                             libs=libs)
        kafka.start()
    except InfraError as exc:
        rds.stop()
        service_unavailable("dedicated Redis/Kafka", exc)
    src = redis.Redis(host=redis_server.host, port=redis_server.port)
    dst = redis.Redis(host="127.0.0.1", port=rds.ports[0])
    for key in src.scan_iter(count=1000):  # the world's rows and seen-sets (DUMP/RESTORE)
        dst.restore(key, 0, src.dump(key), replace=True)
    src.close()
    dst.close()
    yield {"redis": rds, "kafka": kafka, "bootstrap": f"127.0.0.1:{kafka.ports[0]}", "home": home}
    kafka.stop()
    rds.stop()


def _env(deps, world, store, topic: str | None = None, **extra):
    topic = topic or f"impressions-{uuid.uuid4().hex[:8]}"
    create_topics(deps["bootstrap"], [topic], partitions=1)
    return service_env(world, kafka_bootstrap=deps["bootstrap"], topic=topic, redis_port=deps["redis"].ports[0],
                       model_store=store, RECOMMENDER_RELOAD_INTERVAL_S="1", **extra)


@pytest.fixture(scope="module")
def svc(deps, world, tmp_path_factory):
    """A recommender serving a copy of the world's store (max_concurrency 32 for the overload test)."""
    home = tmp_path_factory.mktemp("svc")
    shutil.copytree(world.model_store, home / "models")
    running = serve(home / "state", _env(deps, world, home / "models", RECOMMENDER_MAX_CONCURRENCY="32"))
    yield running
    running.stop()


def _user(world) -> int:
    return int(world.users().sort_values("n").iloc[-1]["user_id"])


def test_no_model_means_not_ready_not_a_crash(deps, world, tmp_path):
    store = tmp_path / "models"  # empty: the service must come up live but not ready
    store.mkdir()
    own = start_unready(tmp_path / "state", _env(deps, world, store))
    try:
        # the watcher's first look (after reading the Feast layout: `import feast` is slow on a busy machine)
        assert wait_for(lambda: own.post("/status", {}).json()["model_error"], 120), "the watcher never looked"
        assert own.client.get("/livez").status_code == 200
        r = own.client.get("/readyz")
        assert r.status_code == 503 and r.json()["ready"] is False and "no production" in r.json()["model_error"]
        r = own.post("/recommend", {"user_id": 1})
        assert r.status_code == 503 and "model not loaded" in r.text
        # the model arrives (copied into the store, as `make train` would register it): ready by itself
        shutil.copytree(world.model_store, store, dirs_exist_ok=True)
        assert wait_for(lambda: own.client.get("/readyz").status_code == 200, 60), own.post("/status", {}).text
    finally:
        own.stop()


def test_redis_outage_degrades_but_stays_ready_then_recovers(deps, svc, world):
    uid = _user(world)
    assert svc.post("/recommend", {"user_id": uid}).json()["fallback"] is None
    deps["redis"].stop()
    try:
        for _ in range(5):
            r = svc.post("/recommend", {"user_id": uid, "k": 5})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["fallback"] == "online_store_unavailable" and len(body["items"]) == 5
            assert body["exclude_seen_honoured"] is False  # the seen-set could not be read
        ready = svc.client.get("/readyz")  # can answer (the fallback): stays in the load balancer
        assert ready.status_code == 200 and ready.json()["degraded"] == ["online_store_unavailable"], ready.text
        text = svc.metrics()
        assert metric_sum(text, "recommender_online_store_up") == 0
        assert metric_sum(text, "recommender_fallbacks_total", "online_store_unavailable") >= 5
    finally:
        deps["redis"].start()
    assert wait_for(lambda: svc.post("/recommend", {"user_id": uid}).json()["fallback"] is None, 15)
    assert svc.client.get("/readyz").json()["degraded"] == []
    assert metric_sum(svc.metrics(), "recommender_online_store_up") == 1


def test_kafka_outage_never_fails_a_request_and_counts_drops(deps, svc, world):
    uid = _user(world)
    assert wait_for(lambda: svc.post("/recommend", {"user_id": uid}).status_code == 200
                    and metric_sum(svc.metrics(), "recommender_impressions_sent_total") > 0, 30)
    deps["kafka"].stop()
    try:
        dropped0 = metric_sum(svc.metrics(), "recommender_impressions_dropped_total")

        def dropped():
            for _ in range(5):
                t0 = time.perf_counter()
                r = svc.post("/recommend", {"user_id": uid})
                assert r.status_code == 200 and time.perf_counter() - t0 < 2.0
            return metric_sum(svc.metrics(), "recommender_impressions_dropped_total") > dropped0

        assert wait_for(dropped, 60, step=0.5), "the dropped counter did not rise with Kafka down"
    finally:
        deps["kafka"].start()
    sent = metric_sum(svc.metrics(), "recommender_impressions_sent_total")
    assert wait_for(lambda: svc.post("/recommend", {"user_id": uid}).status_code == 200
                    and metric_sum(svc.metrics(), "recommender_impressions_sent_total") > sent, 60), \
        "delivery did not resume after Kafka returned"


def test_hot_reload_under_load_fails_no_request(svc, world):
    store = Path(svc.server.env["MODEL_STORE_DIR"])
    old = svc.post("/status", {}).json()["models"]["control"]
    with Load(svc.url, world.users()["user_id"].astype(int).tolist(), threads=4) as load:
        assert wait_for(lambda: len(load.codes) >= 20, 30), "the load never got going"
        new = register_model(store, world_bundle_dir(world), f"v{uuid.uuid4().hex[:6]}", stage="production",
                             metadata={"copy_of": world.tags[0]})
        assert wait_for(lambda: new in load.versions, 60), f"{new} never served; saw {set(load.versions)}"
        assert wait_for(lambda: load.versions.count(new) >= 20, 30)  # and it keeps serving it
    assert load.codes and load.codes.count(200) == len(load.codes), {c: load.codes.count(c) for c in set(load.codes)}
    assert set(load.versions) == {old, new}
    assert load.versions[-1] == new


def test_overload_is_refused_with_429_then_recovers(svc, world):
    users = world.users()["user_id"].astype(int).tolist()

    async def burst(n: int) -> list[int]:
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        async with httpx.AsyncClient(base_url=svc.url, timeout=60, limits=limits) as c:
            rs = await asyncio.gather(*[c.post("/recommend", json={"user_id": users[i % len(users)]})
                                        for i in range(n)], return_exceptions=True)
        return [r.status_code if isinstance(r, httpx.Response) else -1 for r in rs]

    codes = []
    for _ in range(3):  # 3 waves of 300 simultaneous requests against max_concurrency=32
        codes += asyncio.run(burst(300))
    counts = {c: codes.count(c) for c in set(codes)}
    assert counts.get(429, 0) > 0, f"the overload was not an overload (nothing refused): {counts}"
    assert set(counts) <= {200, 429}, f"the README promises 429 for overload, nothing else: {counts}"
    # normal load right after: every request 2xx within a few seconds
    assert wait_for(lambda: all(svc.post("/recommend", {"user_id": u}).status_code == 200 for u in users[:20]), 10)


# ---------------------------------------------------------------- shutdown: nothing lost uncounted
def _sigterm_mid_load(own, world, drain_s: float) -> tuple[Load, float]:
    """SIGTERM the service's main process (what a container runtime does) while 4 clients post;
    returns the load and the seconds until the whole process group was gone."""
    pid = own.server.pid()
    with Load(own.url, world.users()["user_id"].astype(int).tolist(), threads=4) as load:
        assert wait_for(lambda: len(load.ok_ids) >= 200, 60), "the load never got going"
        t0 = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        gone = wait_for(lambda: not pid_alive(pid) and not group_members(pid), drain_s + 60, step=0.1)
        took = time.monotonic() - t0
    own.stop()
    assert gone, f"the service was still running {took:.0f} s after SIGTERM"
    return load, took


@pytest.mark.parametrize("kafka_up", [True, False], ids=["kafka-up", "kafka-down-at-shutdown"])
def test_sigterm_mid_load_sent_plus_dropped_equals_served(deps, world, tmp_path, kafka_up):
    topic = f"impressions-{uuid.uuid4().hex[:8]}"
    shutil.copytree(world.model_store, tmp_path / "models")
    drain_s = 2.0
    own = serve(tmp_path / "state", _env(deps, world, tmp_path / "models", topic=topic,
                                         RECOMMENDER_SHUTDOWN_DRAIN_S=str(drain_s)))
    if not kafka_up:  # the buffer can then only be counted, not delivered
        deps["kafka"].stop()
    try:
        load, took = _sigterm_mid_load(own, world, drain_s)
    finally:
        if not kafka_up:
            deps["kafka"].start()
    b = shutdown_balance(own.server.logfile)
    on_topic = topic_request_ids(deps["bootstrap"], topic)
    served = len(load.ok_ids)
    # the service's own balance closes, and the topic agrees with what it says it sent
    assert b["logged"] == b["sent"] + b["dropped"], b
    assert len(on_topic) == b["sent"], (len(on_topic), b)
    # everything a client received was logged; at most one in-flight request per client more
    assert served <= b["logged"] <= served + 4, (served, b)
    assert len(on_topic - set(load.ok_ids)) <= 4, "impressions on the topic that no client was answered for"
    assert b["seconds"] <= drain_s + 1.5 and took < drain_s + 30, (b, took)
    if kafka_up:
        assert b["sent"] > 0 and b.get("dropped_shutdown", 0) <= b["dropped"]
    else:
        assert b.get("dropped_shutdown", 0) > 0, f"nothing was waiting in the buffer at SIGTERM: {b}"
