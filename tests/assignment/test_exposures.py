"""One Exposure event per assignment served, on real Kafka; outages degrade, never 5xx."""

from __future__ import annotations

import time

import redis

from minirec.events import Exposure, decode
from minirec.features.seen import seen_key
from minirec.infra.process import free_port
from tests.assignment.conftest import consume


def wait_for(check, timeout_s: float = 30.0, every_s: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"condition not met within {timeout_s} s")


def test_one_exposure_per_assignment_served(service_factory, kafka_broker):
    svc = service_factory()
    answers = {}
    for _rep in range(2):  # each user asks twice: two assignments served, two exposures
        for uid in range(1, 151):
            answers.setdefault(uid, []).append(svc.assign(uid).json())
    inside = [(uid, a["variant"]) for uid, lst in answers.items() for a in lst if a["in_experiment"]]
    assert len(inside) > 200
    wait_for(lambda: svc.metric("assignment_exposures_sent_total") >= len(inside))
    raw = consume(kafka_broker.bootstrap, svc.topic, len(inside) + 1, timeout_s=5)  # +1: prove none extra
    events = [decode(Exposure, m) for m in raw]
    assert sorted((e.user_id, e.variant) for e in events) == sorted(inside)
    assert {e.experiment for e in events} == {"ranker_v1"}
    assert len({e.event_id for e in events}) == len(events)
    assert svc.metric("assignment_exposures_dropped_total") == 0


def test_exposures_are_keyed_by_user(service_factory, kafka_broker):
    from kafka import KafkaConsumer

    svc = service_factory()
    users = [u for u in range(1, 40) if svc.assign(u).json()["in_experiment"]]
    for _ in range(4):
        for u in users:
            svc.assign(u)
    consumer = KafkaConsumer(svc.topic, bootstrap_servers=kafka_broker.bootstrap, auto_offset_reset="earliest",
                             group_id=None, enable_auto_commit=False)
    recs: list = []
    try:
        wait_for(lambda: recs.extend(r for b in consumer.poll(timeout_ms=500).values() for r in b)
                 or len(recs) >= 5 * len(users))
    finally:
        consumer.close()
    assert {r.key for r in recs} == {str(u).encode() for u in users}
    by_user: dict = {}
    for r in recs:
        by_user.setdefault(r.key, set()).add(r.partition)
    assert all(len(parts) == 1 for parts in by_user.values())  # one user, one partition (in order)
    assert len({p for parts in by_user.values() for p in parts}) > 1  # and users spread over partitions


def test_kafka_down_drops_and_counts_but_serves(service_factory):
    dead = f"127.0.0.1:{free_port()}"
    svc = service_factory(kafka_bootstrap=dead, ready=False, ASSIGNMENT_EXPOSURE_BUFFER="5")
    assert svc.http.get("/readyz").status_code == 503
    codes = [svc.assign(uid).status_code for uid in range(1, 201)]
    assert set(codes) == {200}
    inside = sum(1 for uid in range(1, 201) if svc.assign(uid).json()["in_experiment"])
    # 2 x inside exposures logged, at most 5 buffered: the rest dropped and counted
    wait_for(lambda: svc.metric("assignment_exposures_dropped_total", 'reason="buffer_full"') >= 2 * inside - 5)
    assert svc.metric("assignment_exposures_sent_total") == 0


def test_returning_users_are_kept_out_of_a_new_user_experiment(service_factory, redis_server):
    svc = service_factory()
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    # users in cold_start_v1's slice of the ranking layer (not held out)
    eligible = [u for u in range(1, 1500)
                if svc.assign(u, "cold_start_v1").json()["reason"] in ("assigned", "outside_coverage")]
    assert len(eligible) > 50
    returning = eligible[::2]
    for u in returning:
        client.sadd(seen_key(svc.project, u), 50)
    answers = {u: svc.assign(u, "cold_start_v1").json() for u in eligible}
    assert all(answers[u]["reason"] == "audience_mismatch" and not answers[u]["in_experiment"] for u in returning)
    assert all(answers[u]["in_experiment"] for u in eligible[1::2])
    assert svc.metric("assignment_audience_lookups_total", 'result="returning"') >= len(returning)
    client.close()


def test_redis_down_serves_the_control_with_reason(service_factory):
    svc = service_factory(redis_port=free_port())
    answers = [svc.assign(u, "cold_start_v1") for u in range(1, 400)]
    assert {r.status_code for r in answers} == {200}
    reasons = {r.json()["reason"] for r in answers}
    assert "audience_unknown" in reasons and "assigned" not in reasons
    assert all(r.json()["variant"] == "control" for r in answers)
    assert svc.metric("assignment_audience_lookups_total", 'result="unavailable"') > 0
    # experiments without an audience never ask Redis and still assign
    assert any(svc.assign(u).json()["in_experiment"] for u in range(1, 50))


def test_a_hung_redis_costs_at_most_the_timeout(service_factory):
    import socket

    with socket.socket() as silent:  # accepts connections, never answers: a hung Redis
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        svc = service_factory(redis_port=silent.getsockname()[1], ASSIGNMENT_REDIS_TIMEOUT_MS="50")
        targeted = [u for u in range(1, 400) if svc.assign(u, "cold_start_v1").json()["reason"] == "audience_unknown"]
        assert targeted, "no user of cold_start_v1's slice was sampled"
        for u in targeted[:5]:
            t0 = time.monotonic()
            r = svc.assign(u, "cold_start_v1")
            assert r.status_code == 200 and r.json()["reason"] == "audience_unknown"
            assert time.monotonic() - t0 < 0.5  # bounded by ASSIGNMENT_REDIS_TIMEOUT_MS, not by the hang
