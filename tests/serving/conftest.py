"""Serving fixtures: a trained world in the session Redis, and `bentoml serve` processes.

`world`: loadtests.world builds a small synthetic dataset, trains and registers
a real bundle in a temp BentoML model store, and materialises the Feast
features (plus seen-sets) into the session `redis_server` under its own
Feast project, so other tests' keys are untouched.

`serve(...)` starts the recommender as a real `bentoml serve` process on a
free port (own process group, stopped at teardown) with settings overridden
through the environment, and waits for /readyz.

`register_model(...)` is the one place the serving tests register a second
model (the registry's public register() / promote()); `planted` makes users
whose online rows the test shapes (corrupt fields, a seen-set of its choice).
"""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from minirec.infra.kafka import create_topics
from minirec.infra.process import InfraError, Server, free_port
from minirec.settings import REPO_ROOT

BENTOML = str(Path(sys.executable).with_name("bentoml"))


@pytest.fixture(scope="session")
def world(tmp_path_factory, redis_server):
    from loadtests.world import build_world

    return build_world(tmp_path_factory.mktemp("world"), redis_server.host, redis_server.port)


def service_env(world, *, kafka_bootstrap: str, topic: str, redis_port: int | None = None,
                model_store: Path | None = None, **extra: str) -> dict[str, str]:
    host, port = kafka_bootstrap.split(":")
    env = {**world.env, "KAFKA_HOST": host, "KAFKA_PORT": port, "TOPIC_IMPRESSIONS": topic,
           "RECOMMENDER_ITEMS_TABLE": str(world.data_dir / "items.parquet"),
           # a home per service: BentoML keeps its Prometheus multiprocess files there and clears them on start
           "BENTOML_HOME": str(world.root / f"bentoml_home_{uuid.uuid4().hex[:8]}"), "BENTOML_DO_NOT_TRACK": "True",
           "PYTHONPATH": str(REPO_ROOT)}
    if redis_port is not None:
        env["REDIS_PORT"] = str(redis_port)
    if model_store is not None:
        env["MODEL_STORE_DIR"] = str(model_store)
    env.update(extra)
    return env


def register_model(store: Path, bundle_dir: Path, version: str, *, stage: str = "candidate",
                   metadata: dict | None = None) -> str:
    """Register a bundle folder in `store` as two_tower:<version>; stage "production" promotes it."""
    from minirec.train import registry

    tag = registry.register(bundle_dir, store_path=store, name="two_tower", version=version,
                            metadata=metadata or {"run_id": version})
    if stage == "production":
        registry.promote(store, tag)
    return tag


def world_bundle_dir(world) -> Path:
    """The bundle files of the world's first (production) model, as the pipeline wrote them."""
    return world.root / "artifacts" / "runs" / world.tags[0].split(":")[1] / "bundle"


def permuted_bundle(world, dest: Path, seed: int = 1) -> dict[int, int]:
    """A second, different bundle: the world's model (retrieval stage only) with its row -> item-id map
    shuffled, so the same query rows name other films. Returns {item id in the world's model: item id in this one}."""
    import numpy as np

    shutil.copytree(world_bundle_dir(world), dest)
    # without its ranking stage: the ranker reads item features and the user's recent items by id, so
    # under a shuffled id map it would reorder differently and the answer would not be a pure relabelling
    shutil.rmtree(dest / "ranker", ignore_errors=True)
    ids = np.load(dest / "item_ids.npy")
    perm = np.random.default_rng(seed).permutation(ids)
    np.save(dest / "item_ids.npy", perm)
    return {int(a): int(b) for a, b in zip(ids, perm, strict=True)}


@pytest.fixture(scope="session")
def layout(world):
    """The Feast layout of two_tower_v1 in the world (which Redis fields hold which feature)."""
    from services.recommender.features import open_layout

    return open_layout(world.feature_repo, "two_tower_v1", world.project, world.redis_host, world.redis_port)


def heaviest_user(world) -> int:
    return int(world.users().sort_values("n").iloc[-1]["user_id"])


@pytest.fixture
def planted(world, layout):
    """plant(corrupt={}, seen=None) -> a new user id whose online row copies the heaviest user's.

    corrupt: {feature name: raw bytes} written into the Feast hash, {"<key>": str} replacing the
    whole hash by a string, or {"<seen>": str} replacing the seen-set by a string. seen: the
    user's seen-set (default: the heaviest user's). Its keys are deleted afterwards; the world's
    own rows are never touched."""
    import redis

    from minirec.features.seen import seen_key
    from services.recommender.features import feast_entity_key, feast_field

    client = redis.Redis(host=world.redis_host, port=world.redis_port)
    made: list = []
    src = feast_entity_key(layout.join_key, heaviest_user(world), layout.project)

    def plant(corrupt: dict | None = None, seen: set[int] | None = None) -> int:
        uid = 900_000 + uuid.uuid4().int % 90_000
        key, skey = feast_entity_key(layout.join_key, uid, layout.project), seen_key(layout.project, uid)
        client.restore(key, 0, client.dump(src), replace=True)
        made.extend([key, skey])
        members = world.seen(heaviest_user(world)) if seen is None else seen
        if members:
            client.sadd(skey, *sorted(members))
        for name, raw in (corrupt or {}).items():
            if name in ("<key>", "<seen>"):
                target = key if name == "<key>" else skey
                client.delete(target)
                client.set(target, raw)
            else:
                view = next(v for v, f in layout.features if f == name)
                client.hset(key, feast_field(view, name), raw)
        return uid

    yield plant
    if made:
        client.delete(*made)
    client.close()


def engine_config(world, **over):
    """An in-process EngineConfig over the world (no Kafka: impressions off unless asked)."""
    from services.recommender.engine import EngineConfig

    cfg = EngineConfig(model_store=world.model_store, model_name="two_tower", feature_repo=world.feature_repo,
                       feature_service="two_tower_v1", project=world.project, redis_host=world.redis_host,
                       redis_port=world.redis_port, redis_timeout_s=0.5,
                       items_table=world.data_dir / "items.parquet", kafka_bootstrap="127.0.0.1:1",
                       topic_impressions="unused", impression_buffer=100, overfetch=50, reload_interval_s=1.0,
                       impressions=False)
    for k, v in over.items():
        setattr(cfg, k, v)
    return cfg


@pytest.fixture
def engine(world):
    """A fresh in-process Engine per test (its own loaded model: a test may change it freely)."""
    from services.recommender.engine import Engine

    eng = Engine(engine_config(world), start=False)
    eng.refresh()
    assert eng.features is not None, eng.status.layout_error
    yield eng
    eng.close()
    eng.redis.close()


def ready(url: str) -> bool:
    return httpx.get(f"{url}/readyz", timeout=2).status_code == 200


class Running:
    def __init__(self, server: Server, url: str):
        self.server, self.url = server, url
        self.client = httpx.Client(base_url=url, timeout=10)

    def post(self, path: str, payload) -> httpx.Response:
        return self.client.post(path, json=payload)

    def metrics(self) -> str:
        return self.client.get("/metrics").text

    def stop(self) -> None:
        self.client.close()
        self.server.stop(timeout_s=15)


def serve(state_dir: Path, env: dict[str, str], target: str = "services.recommender.service:Recommender",
          name: str = "recommender") -> Running:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Server(name=name, argv=[BENTOML, "serve", target, "--host", "127.0.0.1", "--port", str(port)],
                    host="127.0.0.1", ports=[port], state_dir=state_dir, health=lambda: ready(url),
                    hint="read the log: the service failed to start or never became ready",
                    env=env, cwd=REPO_ROOT, start_timeout_s=120)
    try:
        server.start()
    except InfraError:
        server.stop()
        raise
    return Running(server, url)


def metric_values(text: str, name: str) -> dict[str, float]:
    """{label-string: value} of every sample of `name` in a Prometheus text page."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key[len(name):]] = float(value)
    return out


def metric_sum(text: str, name: str, contains: str = "") -> float:
    return sum(v for k, v in metric_values(text, name).items() if contains in k and not k.startswith("_"))


@pytest.fixture(scope="session")
def impressions_topic(kafka_broker) -> str:
    name = f"impressions-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_broker.bootstrap, [name], partitions=3)
    return name


@pytest.fixture(scope="session")
def recommender(world, kafka_broker, impressions_topic, tmp_path_factory):
    """The recommender with batching on, against the session Redis and Kafka."""
    env = service_env(world, kafka_bootstrap=kafka_broker.bootstrap, topic=impressions_topic,
                      RECOMMENDER_BATCHING="true")
    running = serve(tmp_path_factory.mktemp("svc"), env)
    yield running
    running.stop()
