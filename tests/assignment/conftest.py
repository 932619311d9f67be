"""Assignment-service fixtures: the real app process (`python -m services.assignment`) on a free port,
pointed through the environment at the session Kafka (a fresh exposures topic per service) and
Redis (a unique Feast project, so its seen-sets are this test's own)."""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from minirec.infra.kafka import create_topics
from minirec.infra.process import InfraError, Server, free_port
from minirec.settings import REPO_ROOT

EXPERIMENTS = REPO_ROOT / "services" / "assignment" / "experiments.yaml"


@dataclass
class Running:
    server: Server
    url: str
    topic: str
    project: str
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def assign(self, user_id, experiment="ranker_v1") -> httpx.Response:
        return self.http.post("/assign", json={"user_id": user_id, "experiment": experiment})

    def metric(self, name: str, contains: str = "") -> float:
        """Sum of the samples of `name` whose label text contains `contains`."""
        total = 0.0
        for line in self.http.get("/metrics").text.splitlines():
            if line.startswith(name) and not line.startswith("#") and contains in line:
                key, _, value = line.rpartition(" ")
                if key.split("{")[0] == name:
                    total += float(value)
        return total

    def stop(self) -> None:
        self.http.close()
        self.server.stop(timeout_s=15)


def start_service(state_dir: Path, kafka_bootstrap: str, redis_port: int, *, experiments: Path = EXPERIMENTS,
                  topic: str | None = None, project: str | None = None, ready: bool = True,
                  **extra: str) -> Running:
    """Start the service and wait for /readyz (or /healthz when `ready` is False: Kafka may be down)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    topic = topic or f"exposures-{uuid.uuid4().hex[:8]}"
    project = project or f"test:{uuid.uuid4().hex[:10]}"
    host, kport = kafka_bootstrap.split(":")
    env = {"KAFKA_HOST": host, "KAFKA_PORT": kport, "TOPIC_EXPOSURES": topic, "REDIS_HOST": "127.0.0.1",
           "REDIS_PORT": str(redis_port), "FEAST_PROJECT": project, "ASSIGNMENT_EXPERIMENTS": str(experiments),
           "ASSIGNMENT_PORT": str(port), "PYTHONPATH": str(REPO_ROOT), **extra}
    probe = "/readyz" if ready else "/healthz"
    server = Server(name="assignment", argv=[sys.executable, "-m", "services.assignment"], host="127.0.0.1",
                    ports=[port], state_dir=state_dir, health=lambda: httpx.get(url + probe, timeout=2).status_code == 200,
                    hint="read the log: the service failed to start", env=env, cwd=REPO_ROOT, start_timeout_s=90)
    try:
        server.start()
    except InfraError:
        server.stop()
        raise
    return Running(server, url, topic, project, env)


@pytest.fixture
def service_factory(kafka_broker, redis_server, tmp_path):
    """start(**kw) -> Running; everything started is stopped at teardown."""
    started: list[Running] = []

    def start(name: str = "svc", **kw) -> Running:
        topic = kw.pop("topic", None) or f"exposures-{uuid.uuid4().hex[:8]}"
        create_topics(kafka_broker.bootstrap, [topic], partitions=3)
        kw.setdefault("kafka_bootstrap", kafka_broker.bootstrap)
        kw.setdefault("redis_port", redis_server.port)
        running = start_service(tmp_path / name, topic=topic, **kw)
        started.append(running)
        return running

    yield start
    for r in started:
        r.stop()


@pytest.fixture(scope="module")
def service(kafka_broker, redis_server, tmp_path_factory):
    """One service for a module's read-only checks."""
    topic = f"exposures-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_broker.bootstrap, [topic], partitions=3)
    running = start_service(tmp_path_factory.mktemp("assignment"), kafka_broker.bootstrap, redis_server.port,
                            topic=topic)
    yield running
    running.stop()


def consume(bootstrap: str, topic: str, expected: int, timeout_s: float = 30.0) -> list[bytes]:
    """Read the topic from the beginning until `expected` messages arrived or the deadline passed."""
    import time

    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=500)
    out: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                out.extend(rec.value for rec in batch)
    finally:
        consumer.close()
    return out
