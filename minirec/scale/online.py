"""Online-store cost curve: Feast's Redis encoding vs a packed record, per user count.

Per size, in one run on one fresh redis-server (no persistence):

    synthetic lake (minirec.data.synthetic, n users) -> latest row per user of the three user
    views (minirec.scale.user_rows) -> offline parquet in a copy of feature_repo/ -> feast apply
      1. Feast writes the rows: `store.materialize` (offline parquet -> Redis, what `make train`
         runs) up to `feast_max` users; above it `store.write_to_online_store` per view (the
         same Feast encoder and Redis writer, minus the offline read), labelled in the row.
         used_memory before/after (INFO memory) / users = bytes per user.
      2. The packed record (minirec.scale.packed), one SET per user; same memory accounting.
      3. Closed loop of reads of random users, alternating the two readers call by call (so
         load on the shared machine hits both alike): batch of 1 and batch of 32, p50/p99 µs.
         The Feast-encoding reader is the service's (passed in as `feast_reader`, so this core
         module does not import a service).

Both writers and readers go through redis-py over a real TCP connection to 127.0.0.1.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

USER_VIEWS = ("user_profile", "user_aggregates", "user_realtime")
KEYS = ("users", "encoding", "bytes_per_user", "write_s", "p50_us", "p99_us", "p50_us_batch32", "p99_us_batch32")
Reader = Callable[[Sequence[int]], list]


def synth_rows(n_users: int, root: Path, seed: int = 0) -> dict:
    """A synthetic lake of n users (the generator's defaults; items = max(2000, n/10)) -> latest rows."""
    from minirec.data.synthetic import SyntheticConfig, generate
    from minirec.scale.user_rows import latest_user_rows

    lake = root / "lake"
    generate(SyntheticConfig(n_users=n_users, n_items=max(2_000, n_users // 10), seed=seed), lake)
    rows = latest_user_rows(lake)
    shutil.rmtree(lake, ignore_errors=True)
    return rows


def feast_repo(rows: dict, root: Path, port: int, project: str = "scale"):
    """Copy feature_repo/ under root, write the user views' offline parquet, apply; -> FeatureStore."""
    from minirec.features.store import copy_repo, open_store, repo_objects
    from minirec.features.tables import write_feature_tables

    repo = copy_repo(root / "repo")
    write_feature_tables(rows, repo / "data")
    store = open_store(repo, project=project, redis_host="127.0.0.1", redis_port=port)
    store.apply(repo_objects(repo))
    return store


def used_memory(client: Any) -> int:
    return int(client.info("memory")["used_memory"])


def write_feast(store: Any, rows: dict, how: str, chunk: int = 50_000, progress=lambda n: None) -> float:
    """Write the user views through Feast; -> seconds. how: 'materialize' | 'write_to_online_store'."""
    from minirec.features.tables import CATALOGUE_EPOCH

    t0 = time.perf_counter()
    if how == "materialize":
        store.materialize(start_date=(CATALOGUE_EPOCH - np.timedelta64(1, "D")).to_pydatetime(),
                          end_date=datetime.now(UTC), feature_views=list(USER_VIEWS))
    elif how == "write_to_online_store":
        for view in USER_VIEWS:
            frame = rows[view]
            for lo in range(0, len(frame), chunk):
                store.write_to_online_store(view, frame.iloc[lo:lo + chunk])
                progress(min(chunk, len(frame) - lo))
    else:
        raise ValueError(f"unknown Feast write {how!r} (materialize, write_to_online_store)")
    return time.perf_counter() - t0


def closed_loop(readers: dict[str, Reader], batches: list[list[int]]) -> dict[str, dict[str, float]]:
    """Each batch read by every reader in turn (alternating), after a warm-up -> p50/p99 µs per reader."""
    for b in batches[:20]:
        for fn in readers.values():
            fn(b)
    times = {name: np.empty(len(batches)) for name in readers}
    for i, b in enumerate(batches):
        for name, fn in readers.items():
            t = time.perf_counter()
            fn(b)
            times[name][i] = (time.perf_counter() - t) * 1e6
    return {name: {"p50_us": float(np.percentile(t, 50)), "p99_us": float(np.percentile(t, 99))}
            for name, t in times.items()}


def run_size(n_users: int, root: Path, feast_reader: Callable[[Any, Any], Reader], feast_max: int = 100_000,
             n_reads: int = 2_000, seed: int = 0, progress: Callable[[str], None] = lambda s: None) -> list[dict]:
    """One user count -> two rows (encoding 'feast', 'packed') with KEYS and details."""
    import redis

    from minirec.infra.process import free_port
    from minirec.infra.redis_server import redis_server
    from minirec.scale.packed import PackedReader, pack, write_packed

    root.mkdir(parents=True, exist_ok=True)
    progress(f"{n_users:,} users: synthetic rows")
    rows = synth_rows(n_users, root, seed)
    port = free_port()
    server = redis_server(root / "redis", "127.0.0.1", port, persist=False)
    server.start()
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        store = feast_repo(rows, root, port)
        how = "materialize" if n_users <= feast_max else "write_to_online_store"
        m0 = used_memory(client)
        progress(f"{n_users:,} users: Feast {how}")
        done = [0]

        def rows_written(n: int) -> None:  # write_to_online_store reports chunks of rows (3 views per user)
            done[0] += n
            progress(f"{n_users:,} users: Feast {how} {done[0]:,}/{len(USER_VIEWS) * n_users:,} rows")

        feast_s = write_feast(store, rows, how, progress=rows_written)
        m1 = used_memory(client)
        progress(f"{n_users:,} users: packed SET")
        ids, rec, vocab = pack(rows)
        t0 = time.perf_counter()
        write_packed(client, store.config.project, ids, rec, vocab)
        packed_s = time.perf_counter() - t0
        m2 = used_memory(client)
        progress(f"{n_users:,} users: closed-loop reads")
        readers = {"feast": feast_reader(client, store), "packed": PackedReader(client, store.config.project).read}
        rng = np.random.default_rng(seed + 1)
        one = closed_loop(readers, [[int(u)] for u in rng.choice(ids, n_reads)])
        b32 = closed_loop(readers, [rng.choice(ids, 32).tolist() for _ in range(max(50, n_reads // 8))])
        keys = int(client.dbsize())
    finally:
        client.close()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    common = {"users": n_users, "redis_keys": keys, "record_bytes": int(rec.dtype.itemsize)}
    out = []
    for enc, mem, secs, write in (("feast", m1 - m0, feast_s, f"feast {how}"),
                                  ("packed", m2 - m1, packed_s, "redis-py pipelined SET, 10k per round trip")):
        out.append({**common, "encoding": enc, "bytes_per_user": round(mem / n_users, 1), "write_s": round(secs, 2),
                    "users_per_s_write": round(n_users / secs), "write": write,
                    "p50_us": round(one[enc]["p50_us"], 1), "p99_us": round(one[enc]["p99_us"], 1),
                    "p50_us_batch32": round(b32[enc]["p50_us"], 1), "p99_us_batch32": round(b32[enc]["p99_us"], 1)})
    return out
