"""Stream fixtures: a minimal Feast repo per test (private project in the session Redis), fresh topics,
and helpers to run the processor in-process (a thread) or as `python -m services.stream` (a subprocess).

The Feast repo is the real feature_repo/ definitions over tiny offline tables
derived from a synthetic dataset (40 users, 60 items), applied under a unique
project name, so each test's online rows and state keys are its own.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from minirec.infra.kafka import create_topics
from minirec.infra.process import free_port
from minirec.settings import REPO_ROOT
from services.stream.settings import StreamConfig

N_ITEMS = 60


def wait_for(cond: Callable[[], object], timeout_s: float, what: str, every_s: float = 0.05):
    """Poll `cond` until it is truthy (returns its value) or fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(every_s)


@pytest.fixture(scope="session")
def offline_tables(tmp_path_factory) -> Path:
    """Feature tables of a tiny synthetic lake (what `feast apply` checks exist)."""
    from minirec.data.movielens import load
    from minirec.data.synthetic import SyntheticConfig, generate
    from minirec.features.tables import build_feature_tables, write_feature_tables

    root = tmp_path_factory.mktemp("stream_offline")
    generate(SyntheticConfig(n_users=40, n_items=N_ITEMS, mean_interactions=5, days=10, seed=1), root / "lake")
    write_feature_tables(build_feature_tables(load(root / "lake")), root / "tables")
    return root


@dataclass
class FeastWorld:
    repo: Path
    project: str
    redis_host: str
    redis_port: int
    items_table: Path

    def store(self):
        from minirec.features.store import open_store

        return open_store(self.repo, project=self.project, redis_host=self.redis_host, redis_port=self.redis_port)

    def online(self, user_ids: list[int]) -> pd.DataFrame:
        """user_realtime read back through Feast's own get_online_features."""
        feats = ["user_realtime:last_items", "user_realtime:u_cnt_1h", "user_realtime:u_cnt_24h"]
        return self.store().get_online_features(features=feats, entity_rows={"user_id": user_ids}).to_df()


def make_feast_world(root: Path, offline_tables: Path, host: str, port: int) -> FeastWorld:
    from minirec.features.store import apply_repo, copy_repo, open_store

    repo = copy_repo(root / "feature_repo")
    shutil.copytree(offline_tables / "tables", repo / "data")
    project = f"st_{uuid.uuid4().hex[:10]}"
    store = open_store(repo, project=project, redis_host=host, redis_port=port)
    apply_repo(store, repo)
    return FeastWorld(repo, project, host, port, offline_tables / "lake" / "items.parquet")


@pytest.fixture
def feast_world(tmp_path, offline_tables, redis_server) -> FeastWorld:
    return make_feast_world(tmp_path, offline_tables, redis_server.host, redis_server.port)


@pytest.fixture
def topics(kafka_broker) -> dict[str, str]:
    """Fresh interactions/impressions/exposures/deadletter topics (3 partitions each)."""
    tag = uuid.uuid4().hex[:8]
    names = {k: f"{k}-{tag}" for k in ("interactions", "impressions", "exposures", "deadletter")}
    create_topics(kafka_broker.bootstrap, list(names.values()), partitions=3)
    return names


def stream_config(kafka_broker, topics: dict[str, str], world: FeastWorld, lake: Path, **over) -> StreamConfig:
    base = StreamConfig.from_settings()
    return dataclasses.replace(
        base, bootstrap=kafka_broker.bootstrap, group_id=f"stream-{uuid.uuid4().hex[:8]}",
        topic_interactions=topics["interactions"], topic_impressions=topics["impressions"],
        topic_exposures=topics["exposures"], topic_deadletter=topics["deadletter"],
        redis_host=world.redis_host, redis_port=world.redis_port, feast_project=world.project,
        feature_repo=world.repo, lake_dir=lake, items_table=world.items_table, retry_max_s=0.5, **over)


def config_env(cfg: StreamConfig, metrics_port: int) -> dict[str, str]:
    """The same config as environment overrides for `python -m services.stream`."""
    return cfg.to_env(metrics_port)


class InProcess:
    """The processor on a thread of the test process (same code path as the CLI, minus signals)."""

    def __init__(self, cfg: StreamConfig):
        from services.stream.app import build

        self.app = build(cfg)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.app.processor.run, args=(self.stop_event,), daemon=True)
        self.thread.start()
        # produce only once the group has settled: a rebalance mid-batch makes the commit fail and the
        # batch replay (correct, but then a dead letter is sent twice and exact counter checks would flake)
        n = 3 * len(cfg.topics)
        wait_for(lambda: len(self.app.consumer.assignment()) == n, 120, f"the consumer to own {n} partitions")

    def metric(self, name: str, **labels) -> float:
        return self.app.metrics.registry.get_sample_value(name, labels) or 0.0

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "processor thread did not stop within 30 s"
        self.app.close()


class Subprocess:
    """`python -m services.stream` in its own process group, log in `log_path`."""

    def __init__(self, cfg: StreamConfig, log_path: Path):
        self.metrics_port = free_port()
        env = {**os.environ, **config_env(cfg, self.metrics_port), "PYTHONPATH": str(REPO_ROOT)}
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "services.stream"], cwd=REPO_ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def metric(self, name: str, **labels) -> float:
        """A sample from the process's /metrics page (0 when absent or not up yet)."""
        import httpx
        from prometheus_client.parser import text_string_to_metric_families

        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return 0.0
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        return 0.0

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout_s: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.log.close()

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        if not self.log.closed:
            self.log.close()

    def tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])


def committed_offsets(bootstrap: str, group_id: str, topic: str) -> dict[int, int]:
    """{partition: committed offset} of the group on `topic` (0 = nothing committed). Does not join the group."""
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    try:
        parts = sorted(c.partitions_for_topic(topic) or [])
        return {p: c.committed(TopicPartition(topic, p)) or 0 for p in parts}
    finally:
        c.close()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
        return {tp.partition: off for tp, off in c.end_offsets(tps).items()}
    finally:
        c.close()


def read_lake(lake: Path, table: str = "interactions") -> pd.DataFrame:
    files = sorted((lake / table).glob("date=*/part-*.parquet"))
    if not files:
        return pd.DataFrame(columns=["event_id", "user_id", "item_id", "event_timestamp"])
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def assert_online_matches_lake(world: FeastWorld, lake: pd.DataFrame) -> pd.DataFrame:
    """Every user's online row equals the offline definition recomputed from the lake; returns that recount."""
    import numpy as np

    from minirec.features.tables import build_user_realtime

    users = sorted(lake["user_id"].unique().tolist())
    expect = build_user_realtime(lake, np.array(users)).groupby("user_id").last()
    online = world.online(users).set_index("user_id")
    assert (online["u_cnt_1h"] == expect.loc[users, "u_cnt_1h"]).all()
    assert (online["u_cnt_24h"] == expect.loc[users, "u_cnt_24h"]).all()
    assert all(list(online.loc[u, "last_items"]) == list(expect.loc[u, "last_items"]) for u in users)
    return expect
