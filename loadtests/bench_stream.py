"""Stream processor benchmark: sustained events/s vs a bare consume loop, freshness at a fixed rate.

One run, own Redis and Kafka on free ports in a temp folder (never the dev stack):
  1. N events on a fresh topic; a bare KafkaConsumer (consume and discard) reads them all -> bare_events_per_s;
     the processor (parse, validate, lake, Lua state, Feast push, commit) drains the same topic under another
     group -> events_per_s (time until the last commit).
  2. the processor runs while a producer sends live events (event_time = send time) at RATE events/s
     for SECONDS s -> freshness p50/p99 (event_time -> the batch's push returned).
  3. exactness: the lake holds every produced event_id exactly once -> lost, duplicated.

    .venv/bin/python loadtests/bench_stream.py [--events 20000] [--rate 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script: make the repo's packages importable


def setup_world(root: Path):
    from minirec.data.movielens import load
    from minirec.data.synthetic import SyntheticConfig, generate
    from minirec.features.store import apply_repo, copy_repo, open_store
    from minirec.features.tables import build_feature_tables, write_feature_tables
    from minirec.infra.kafka import kafka_server
    from minirec.infra.process import free_port
    from minirec.infra.redis_server import redis_server
    from minirec.infra.stack import kafka_libs
    from minirec.settings import get_settings

    redis = redis_server(root / "redis", "127.0.0.1", free_port(), persist=False)
    redis.start()
    kafka = kafka_server(root / "kafka", "127.0.0.1", free_port(), free_port(), heap_mb=320,
                         libs=kafka_libs(get_settings()))
    kafka.start()
    generate(SyntheticConfig(n_users=500, n_items=300, mean_interactions=5, days=10, seed=0), root / "lake0")
    repo = copy_repo(root / "feature_repo")
    write_feature_tables(build_feature_tables(load(root / "lake0")), repo / "data")
    store = open_store(repo, project="bench_stream", redis_host="127.0.0.1", redis_port=redis.ports[0])
    apply_repo(store, repo)
    return redis, kafka, repo


def events(n: int, users: int, items: int, live: bool, seed: int = 0):
    from minirec.events import Interaction

    rng = np.random.default_rng(seed)
    t0 = datetime.now(UTC) - timedelta(days=1)
    for k, (u, i) in enumerate(zip(rng.integers(1, users + 1, n), rng.integers(1, items + 1, n), strict=True)):
        t = datetime.now(UTC) if live else t0 + timedelta(milliseconds=k)
        yield Interaction(user_id=int(u), item_id=int(i), action="click", event_time=t)


def bare_rate(bootstrap: str, topic: str, n: int) -> float:
    from kafka import KafkaConsumer

    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"bare-{uuid.uuid4().hex[:6]}",
                      auto_offset_reset="earliest", enable_auto_commit=False, max_poll_records=1000)
    got, t0 = 0, None
    while got < n:
        polled = c.poll(timeout_ms=1000)
        if t0 is None and polled:
            t0 = time.perf_counter()
        got += sum(len(v) for v in polled.values())
    c.commit()
    dt = time.perf_counter() - t0
    c.close()
    return n / dt


def main(argv: list[str] | None = None) -> int:
    from kafka import KafkaProducer

    from minirec.events import encode, key_of
    from minirec.infra.kafka import create_topics
    from minirec.settings import get_settings
    from services.stream.app import build
    from services.stream.metrics import StreamMetrics
    from services.stream.settings import StreamConfig

    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--rate", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=10.0)
    a = p.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench_stream_"))
    redis, kafka, repo = setup_world(root)
    try:
        bootstrap = f"127.0.0.1:{kafka.ports[0]}"
        topics = {k: f"{k}-bench" for k in ("interactions", "impressions", "exposures", "deadletter")}
        create_topics(bootstrap, list(topics.values()), partitions=3)
        prod = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=256_000)
        sent: list[str] = []
        for e in events(a.events, 500, 300, live=False):
            prod.send(topics["interactions"], key=key_of(e), value=encode(e))
            sent.append(e.event_id)
        prod.flush()
        bare = bare_rate(bootstrap, topics["interactions"], a.events)

        cfg = dataclasses.replace(
            StreamConfig.from_settings(), bootstrap=bootstrap, group_id="bench-stream",
            topic_interactions=topics["interactions"], topic_impressions=topics["impressions"],
            topic_exposures=topics["exposures"], topic_deadletter=topics["deadletter"],
            redis_host="127.0.0.1", redis_port=redis.ports[0], feast_project="bench_stream", feature_repo=repo,
            lake_dir=root / "lake", items_table=root / "lake0" / "items.parquet")
        samples: list[float] = []
        metrics = StreamMetrics()
        observe = metrics.freshness.observe
        metrics.freshness.observe = lambda v: (samples.append(v), observe(v))  # keep exact values too
        app = build(cfg, metrics)
        stop = threading.Event()
        thread = threading.Thread(target=app.processor.run, args=(stop,), daemon=True)
        t0 = time.perf_counter()
        thread.start()
        # events visible online (observed after each batch's push; the commit follows at once)
        count = lambda: app.metrics.registry.get_sample_value("stream_freshness_seconds_count") or 0  # noqa: E731
        while count() < a.events:
            time.sleep(0.01)
        rate = a.events / (time.perf_counter() - t0)

        samples.clear()
        n_live = int(a.rate * a.seconds)
        start = time.perf_counter()
        for k, e in enumerate(events(n_live, 500, 300, live=True, seed=1)):
            due = start + k / a.rate  # open loop: fixed schedule
            while time.perf_counter() < due:
                time.sleep(0.0005)
            e = e.model_copy(update={"event_time": datetime.now(UTC)})
            prod.send(topics["interactions"], key=key_of(e), value=encode(e))
            sent.append(e.event_id)
        prod.flush()
        while count() < a.events + n_live:
            time.sleep(0.01)
        stop.set()
        thread.join(timeout=30)
        app.close()
        prod.close()

        lake = pd.concat([pd.read_parquet(f) for f in (root / "lake" / "interactions").glob("date=*/part-*")])
        ids = lake["event_id"]
        out = {"events_per_s": round(rate, 1), "bare_events_per_s": round(bare, 1),
               "ratio": round(rate / bare, 3),
               "freshness_p50_s": round(float(np.percentile(samples, 50)), 4),
               "freshness_p99_s": round(float(np.percentile(samples, 99)), 4),
               "rate_per_s": a.rate, "live_events": n_live, "events": a.events,
               "batch_size": cfg.batch_size, "batch_max_wait_ms": cfg.batch_max_wait_ms,
               "lost": len(set(sent) - set(ids)), "duplicated": int(ids.duplicated().sum())}
        dest = get_settings().artifacts_path / "bench"
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "stream.json").write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps(out, indent=2))
        return 0
    finally:
        kafka.stop()
        redis.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
