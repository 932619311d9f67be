"""minirec.ab.client.assign: the variant from the running service, None on any outage."""

from __future__ import annotations

import time

from minirec.ab import client
from minirec.infra.process import free_port
from tests.assignment.test_api import expected


def test_assign_returns_the_served_variant(service):
    for uid in (1, 2, 3, 196, 5000):
        assert client.assign(service.url, uid, "ranker_v1") == expected(uid)["variant"]
    full = client.assign_response(service.url, 196, "ranker_v1")
    assert full == expected(196)


def test_assign_returns_none_on_any_failure(service):
    assert client.assign(service.url, 1, "no_such_experiment") is None  # 404
    assert client.assign(service.url, 1, "title_badges_v0") is None  # 409 stopped
    assert client.assign(service.url, 0, "ranker_v1") is None  # 422
    t0 = time.monotonic()
    assert client.assign(f"http://127.0.0.1:{free_port()}", 1, "ranker_v1", timeout=0.5) is None  # refused
    assert time.monotonic() - t0 < 2
    assert client.assign(f"{service.url}/healthz#", 1, "ranker_v1") is None  # not the API: 404/405
    client.close()


def test_assign_returns_none_when_the_service_hangs():
    import socket

    with socket.socket() as silent:  # accepts connections (kernel backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        t0 = time.monotonic()
        assert client.assign(url, 1, "ranker_v1", timeout=0.3) is None
        assert time.monotonic() - t0 < 1.5
    client.close()


def test_the_stack_starts_it_natively(kafka_broker, redis_server, tmp_path, monkeypatch):
    """`make stack` (minirec.infra.stack.apps) starts the service from the settings and stops it."""
    import httpx

    from minirec.infra import stack
    from minirec.infra.kafka import create_topics
    from minirec.settings import Settings

    port = free_port()
    host, kport = kafka_broker.bootstrap.split(":")
    create_topics(kafka_broker.bootstrap, ["exposures-stack-test"], partitions=3)
    for k, v in {"KAFKA_HOST": host, "KAFKA_PORT": kport, "REDIS_PORT": str(redis_server.port),
                 "ASSIGNMENT_PORT": str(port), "TOPIC_EXPOSURES": "exposures-stack-test"}.items():
        monkeypatch.setenv(k, v)  # the child reads the same settings from its environment
    app = next(a for a in stack.apps(Settings(run_dir=tmp_path / "run")) if a.name == "assignment")
    try:
        app.start()
        assert app.status()["healthy"]
        r = httpx.post(f"http://127.0.0.1:{port}/assign", json={"user_id": 196, "experiment": "ranker_v1"})
        assert r.status_code == 200 and r.json() == expected(196)
    finally:
        assert app.stop(timeout_s=15)
    assert not app.status()["running"]
