"""Outages and rollouts against a dedicated recommender with its own Redis, Kafka and model store,
so the session servers and the main service are never disturbed.

Order matters inside this module (one stack, one story): no model -> not ready; model arrives ->
ready; Redis down -> fallback, Redis back -> personalised; Kafka down -> requests fine, drops
counted, Kafka back -> delivery resumes; hot reload under load; overload then recovery.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
import uuid

import httpx
import pytest
import redis

from minirec.infra.kafka import create_topics, kafka_server, resolve_jars
from minirec.infra.process import InfraError, free_port
from minirec.infra.redis_server import redis_server as make_redis
from minirec.infra.stack import kafka_libs
from minirec.settings import get_settings
from tests.conftest import service_unavailable
from tests.serving.conftest import metric_sum, service_env

pytestmark = pytest.mark.infra


def _wait(cond, timeout_s: float, step: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if cond():
                return True
        except Exception:
            pass
        time.sleep(step)
    return False


@pytest.fixture(scope="module")
def stack(world, redis_server, tmp_path_factory):
    home = tmp_path_factory.mktemp("resilience")
    # Redis with the world's keys (DUMP/RESTORE), persisted so a restart keeps them
    rds = make_redis(home / "redis", "127.0.0.1", free_port(), persist=True)
    # Kafka of its own
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
    for key in src.scan_iter(count=1000):
        dst.restore(key, 0, src.dump(key), replace=True)
    src.close()
    dst.close()
    topic = "impressions"
    bootstrap = f"127.0.0.1:{kafka.ports[0]}"
    create_topics(bootstrap, [topic], partitions=1)
    store = home / "models"  # empty at start: the service must come up not ready
    store.mkdir()
    env = service_env(world, kafka_bootstrap=bootstrap, topic=topic, redis_port=rds.ports[0], model_store=store,
                      RECOMMENDER_MAX_CONCURRENCY="32", RECOMMENDER_RELOAD_INTERVAL_S="1")
    svc = None
    try:
        svc = _start_unready(home / "svc", env)
        yield {"svc": svc, "redis": rds, "kafka": kafka, "bootstrap": bootstrap, "topic": topic, "store": store,
               "world": world}
    finally:
        if svc is not None:
            svc.stop()
        kafka.stop()
        rds.stop()


def _start_unready(state_dir, env):
    """serve() waits for readiness; this service starts without a model, so wait for /livez."""
    from minirec.infra.process import Server
    from tests.serving.conftest import BENTOML, REPO_ROOT, Running

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Server(name="recommender", argv=[BENTOML, "serve", "services.recommender.service:Recommender",
                                              "--host", "127.0.0.1", "--port", str(port)],
                    host="127.0.0.1", ports=[port], state_dir=state_dir,
                    health=lambda: httpx.get(f"{url}/livez", timeout=2).status_code == 200,
                    hint="read the service log", env=env, cwd=REPO_ROOT, start_timeout_s=120)
    server.start()
    return Running(server, url)


def test_no_model_means_not_ready_not_a_crash(stack):
    svc = stack["svc"]
    time.sleep(1.5)
    assert svc.client.get("/livez").status_code == 200
    assert svc.client.get("/readyz").status_code == 503
    r = svc.post("/recommend", {"user_id": 1})
    assert r.status_code == 503 and "model not loaded" in r.text
    # the model arrives (copied into the store, as `make train` would register it): ready by itself
    shutil.copytree(stack["world"].model_store, stack["store"], dirs_exist_ok=True)
    assert _wait(lambda: svc.client.get("/readyz").status_code == 200, 60), svc.post("/status", {}).text


def _user(stack) -> int:
    return int(stack["world"].users().sort_values("n").iloc[-1]["user_id"])


def test_redis_outage_falls_back_then_recovers(stack):
    svc, uid = stack["svc"], _user(stack)
    assert svc.post("/recommend", {"user_id": uid}).json()["fallback"] is None
    stack["redis"].stop()
    try:
        for _ in range(5):
            r = svc.post("/recommend", {"user_id": uid, "k": 5})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["fallback"] == "online_store_unavailable" and len(body["items"]) == 5
        assert svc.client.get("/readyz").status_code == 503  # ready only when the online store answers
        assert metric_sum(svc.metrics(), "recommender_fallbacks_total", "online_store_unavailable") >= 5
    finally:
        stack["redis"].start()
    assert _wait(lambda: svc.post("/recommend", {"user_id": uid}).json()["fallback"] is None, 15)
    assert svc.client.get("/readyz").status_code == 200


def test_kafka_outage_never_fails_a_request_and_counts_drops(stack):
    svc, uid = stack["svc"], _user(stack)
    assert _wait(lambda: svc.post("/recommend", {"user_id": uid}).status_code == 200
                 and metric_sum(svc.metrics(), "recommender_impressions_sent_total") > 0, 30)
    stack["kafka"].stop()
    try:
        dropped0 = metric_sum(svc.metrics(), "recommender_impressions_dropped_total")

        def dropped():
            for _ in range(5):
                t0 = time.perf_counter()
                r = svc.post("/recommend", {"user_id": uid})
                assert r.status_code == 200 and time.perf_counter() - t0 < 2.0
            return metric_sum(svc.metrics(), "recommender_impressions_dropped_total") > dropped0

        assert _wait(dropped, 60, step=0.5), "the dropped counter did not rise with Kafka down"
    finally:
        stack["kafka"].start()
    sent = metric_sum(svc.metrics(), "recommender_impressions_sent_total")
    assert _wait(lambda: svc.post("/recommend", {"user_id": uid}).status_code == 200
                 and metric_sum(svc.metrics(), "recommender_impressions_sent_total") > sent, 60), \
        "delivery did not resume after Kafka returned"


def test_hot_reload_under_load_fails_no_request(stack):
    from loadtests.world import promote_model
    from minirec.train import registry

    svc, world = stack["svc"], stack["world"]
    users = world.users()["user_id"].astype(int).tolist()
    codes, versions, stop = [], set(), threading.Event()

    def load():
        with httpx.Client(base_url=svc.url, timeout=30) as c:
            i = 0
            while not stop.is_set():
                r = c.post("/recommend", json={"user_id": users[i % len(users)]})
                codes.append(r.status_code)
                if r.status_code == 200:
                    versions.add(r.json()["model_version"])
                i += 1

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        src = world.root / "artifacts" / "runs" / world.tags[0].split(":")[1] / "bundle"
        new = registry.register(src, store_path=stack["store"], name="two_tower", version=f"v{uuid.uuid4().hex[:6]}",
                                metadata={"copy_of": world.tags[0]})
        promote_model(stack["store"], new)
        assert _wait(lambda: new in versions, 60), f"{new} never served; saw {versions}"
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert codes and codes.count(200) == len(codes), {c: codes.count(c) for c in set(codes)}
    assert versions == {world.tags[0], new}


def test_overload_then_recovery(stack):
    svc, world = stack["svc"], stack["world"]
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
    refused = sum(c in (429, 503) for c in codes)
    assert refused > 0, "the overload was not an overload (nothing refused)"
    assert all(c in (200, 429, 503) for c in codes), {c: codes.count(c) for c in set(codes)}
    # normal load right after: every request 2xx within a few seconds
    t0 = time.monotonic()
    assert _wait(lambda: all(svc.post("/recommend", {"user_id": u}).status_code == 200 for u in users[:20]), 10)
    assert time.monotonic() - t0 < 10
