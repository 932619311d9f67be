"""Stream curve for `make bench-scale`: processor throughput vs consumer-group members, lag recovery.

    own Kafka + Redis (loadtests.bench_stream.setup_world), a 3-partition interactions topic per run
    throughput(k): k `python -m services.stream` processes in one group; once the group is stable
      with k members, N events are produced at full speed; events/s = N / (first send -> every
      offset committed).
    lag_recovery(k): k processes under a steady open-loop load of RATE events/s; all of them are
      paused (SIGSTOP) for PAUSE s, then resumed (SIGCONT); recovery = resume -> lag back under
      one batch. Pauses stay below the 10 s session timeout so the group does not rebalance.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def group_members(bootstrap: str, group_id: str, topic: str) -> list[set[int]]:
    """The `topic` partitions each member of a Stable group owns (one set per member; [] if not stable)."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        group = admin.describe_groups([group_id])[group_id]
    except KafkaError:  # no coordinator yet (the group is being created): no members to report
        return []
    finally:
        admin.close()
    if group.get("group_state", group.get("state")) != "Stable":
        return []
    owned = []
    for m in group["members"]:
        parts: set[int] = set()
        for t in m["member_assignment"]["assigned_partitions"]:
            if t["topic"] == topic:
                parts.update(t["partitions"])
        owned.append(parts)
    return owned


def _wait(cond: Callable[[], object], timeout_s: float, what: str, every_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while not (v := cond()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout_s} s")
        time.sleep(every_s)
    return v


def _lag(bootstrap: str, group_id: str, topic: str) -> int:
    """Messages produced but not committed by the group on `topic`."""
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
        end = c.end_offsets(tps)
        return sum(end[tp] - (c.committed(tp) or 0) for tp in tps)
    finally:
        c.close()


class Group:
    """k processor processes in one fresh consumer group on fresh 3-partition topics."""

    def __init__(self, world, k: int, log_dir: Path, batch_size: int = 1000):
        from minirec.infra.kafka import create_topics
        from minirec.infra.process import free_port
        from services.stream.settings import StreamConfig

        redis, kafka, repo, root = world
        self.bootstrap = f"127.0.0.1:{kafka.ports[0]}"
        tag = uuid.uuid4().hex[:6]
        topics = {t: f"{t}-{tag}" for t in ("interactions", "impressions", "exposures", "deadletter")}
        create_topics(self.bootstrap, list(topics.values()), partitions=3)
        self.topic = topics["interactions"]
        self.cfg = dataclasses.replace(
            StreamConfig.from_settings(), bootstrap=self.bootstrap, group_id=f"scale-{tag}",
            topic_interactions=self.topic, topic_impressions=topics["impressions"],
            topic_exposures=topics["exposures"], topic_deadletter=topics["deadletter"],
            redis_host="127.0.0.1", redis_port=redis.ports[0], feast_project="bench_stream", feature_repo=repo,
            lake_dir=root / f"lake-{tag}", items_table=root / "lake0" / "items.parquet", batch_size=batch_size)
        self.procs = []
        for i in range(k):
            env = {**os.environ, **self.cfg.to_env(free_port()), "PYTHONPATH": str(REPO)}
            log = open(log_dir / f"stream-{tag}-{i}.log", "ab")
            self.procs.append(subprocess.Popen([sys.executable, "-m", "services.stream", "--no-metrics"], cwd=REPO,
                                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        _wait(lambda: len(m := group_members(self.bootstrap, self.cfg.group_id, self.topic)) == k and all(m),
              180, f"a stable group of {k} members", every_s=0.5)

    def lag(self) -> int:
        return _lag(self.bootstrap, self.cfg.group_id, self.topic)

    def signal(self, sig: int) -> None:
        for p in self.procs:
            os.killpg(p.pid, sig)

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def _encoded(n: int, live: bool, seed: int) -> list[tuple[bytes, bytes]]:
    from loadtests.bench_stream import events
    from minirec.events import encode, key_of

    return [(key_of(e), encode(e)) for e in events(n, 500, 300, live=live, seed=seed)]


def throughput(world, k: int, n_events: int, log_dir: Path) -> dict:
    """events/s of k processes draining a backlog of n_events (produced while the group is paused, so the
    producer's own speed is not measured; the pause is kept under the 10 s session timeout)."""
    from kafka import KafkaProducer

    payloads = _encoded(n_events, live=False, seed=k)
    g = Group(world, k, log_dir)
    try:
        prod = KafkaProducer(bootstrap_servers=g.bootstrap, acks="all", linger_ms=20, batch_size=256_000)
        g.signal(signal.SIGSTOP)
        t_stop = time.perf_counter()
        try:
            for key, value in payloads:
                prod.send(g.topic, key=key, value=value)
            prod.flush()
        finally:
            paused_s = time.perf_counter() - t_stop
            g.signal(signal.SIGCONT)
        t0 = time.perf_counter()
        _wait(lambda: g.lag() == 0, 600, "every event committed", every_s=0.1)
        dt = time.perf_counter() - t0
        prod.close()
    finally:
        g.close()
    return {"processes": k, "partitions": 3, "events": n_events, "events_per_s": round(n_events / dt, 1),
            "drain_seconds": round(dt, 2), "paused_while_producing_s": round(paused_s, 2)}


def lag_recovery(world, k: int, rate: float, pause_s: float, log_dir: Path, settle_s: float = 5.0) -> dict:
    """Seconds from resuming k paused processors to lag below one batch, under `rate` events/s."""
    from kafka import KafkaProducer

    from minirec.events import Interaction, encode, key_of

    g = Group(world, k, log_dir)
    stop = threading.Event()
    prod = KafkaProducer(bootstrap_servers=g.bootstrap, acks="all", linger_ms=5)

    def load() -> None:  # open loop: a fixed schedule, independent of the processors
        from datetime import UTC, datetime

        import numpy as np

        rng = np.random.default_rng(k)
        start, i = time.perf_counter(), 0
        while not stop.is_set():
            while time.perf_counter() < start + i / rate:
                time.sleep(0.0005)
            e = Interaction(user_id=int(rng.integers(1, 501)), item_id=int(rng.integers(1, 301)), action="click",
                            event_time=datetime.now(UTC))
            prod.send(g.topic, key=key_of(e), value=encode(e))
            i += 1

    t = threading.Thread(target=load, daemon=True)
    try:
        t.start()
        time.sleep(settle_s)
        steady = g.lag()
        g.signal(signal.SIGSTOP)
        time.sleep(pause_s)
        peak = g.lag()
        resumed = time.perf_counter()
        g.signal(signal.SIGCONT)
        _wait(lambda: g.lag() < g.cfg.batch_size, 300, "lag back under one batch", every_s=0.1)
        recovery = time.perf_counter() - resumed
    finally:
        stop.set()
        t.join(timeout=10)
        prod.close()
        g.close()
    return {"processes": k, "rate_per_s": rate, "pause_s": pause_s, "lag_before": steady, "lag_peak": peak,
            "recovery_s": round(recovery, 2),
            "drain_per_s": round(peak / recovery, 1) if recovery > 0 else None}
