"""Shared fixtures: real Redis and Kafka servers for the test session.

Each session starts its own redis-server and Kafka node on free loopback
ports in a temporary folder, so tests never touch a developer's running
stack (`make up`). Tests isolate themselves with a unique key prefix
(`redis_prefix`) or a fresh topic (`kafka_topic`).

When a server cannot start: locally the dependent tests are skipped with
the reason; under CI=true that is a failure, never a skip.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from minirec.infra.kafka import create_topics, kafka_server, resolve_jars
from minirec.infra.process import InfraError, Server, free_port
from minirec.infra.redis_server import redis_server as make_redis
from minirec.infra.stack import kafka_libs
from minirec.settings import get_settings

IN_CI = os.environ.get("CI", "").lower() == "true"
# Pipeline runs in tests are tracked to MLflow only when a test asks (tests/pipeline/test_tracking.py gives
# a store in tmp); otherwise every run of the suite would write into the checkout's run/mlflow. Set before
# any Settings is built; subprocesses (make targets, CLIs) inherit it.
os.environ["MLFLOW_TRACKING_URI"] = ""


def service_unavailable(what: str, exc: Exception) -> None:
    """Fail under CI (a missing service is a broken setup), skip locally."""
    msg = f"{what} could not start: {exc}"
    if IN_CI:
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)  # local runs only; under CI we failed above


def pytest_collection_modifyitems(items):
    """Tests that use a real server fixture get the `infra` marker (make test-fast skips them)."""
    for item in items:
        if {"redis_server", "kafka_broker"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.infra)


@dataclass
class Endpoint:
    host: str
    port: int
    server: Server

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Endpoint:
    home = tmp_path_factory.mktemp("redis")
    server = make_redis(home, "127.0.0.1", free_port(), persist=False)
    try:
        server.start()
    except InfraError as exc:
        service_unavailable("redis-server", exc)
    yield Endpoint("127.0.0.1", server.ports[0], server)
    server.stop()


@pytest.fixture
def redis_prefix(redis_server):
    """A unique key prefix for one test; its keys are deleted afterwards."""
    import redis

    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory) -> Endpoint:
    home = tmp_path_factory.mktemp("kafka")
    libs = kafka_libs(get_settings())
    try:
        resolve_jars(libs)
        server = kafka_server(home, "127.0.0.1", free_port(), free_port(), heap_mb=320,
                              partitions=3, libs=libs)
        server.start()
    except InfraError as exc:
        service_unavailable("Apache Kafka", exc)
    yield Endpoint("127.0.0.1", server.ports[0], server)
    server.stop()


@pytest.fixture
def kafka_topic(kafka_broker) -> str:
    """A fresh 3-partition topic for one test."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    create_topics(kafka_broker.bootstrap, [name], partitions=3)
    return name


@pytest.fixture(scope="session")
def movielens() -> Path:
    """The MovieLens-100K folder (data/ml-100k), fetched if missing; idempotent."""
    from minirec.data.movielens import fetch_movielens

    return fetch_movielens(get_settings().data_path)


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory, redis_server, movielens):
    """The whole training DAG run once on MovieLens-100K (tests/pipeline_run.py), shared by the DAG test
    and the model-quality test; read-only for its users (copy what you change)."""
    from tests.pipeline_run import dag_pipeline_run

    return dag_pipeline_run(tmp_path_factory.mktemp("pipeline_run"), redis_server.host, redis_server.port, movielens)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    from minirec.settings import REPO_ROOT

    return REPO_ROOT
