"""Online feature read cost: Feast `get_online_features` vs the service's raw reader vs one bare
Redis round trip, for 1 user and for a batch of 32 (what one batched request reads).

    python loadtests/bench_features.py --work DIR   # DIR from a bench_serving run (reuses its world)

Writes artifacts/bench/features.json and prints a table. The raw reader is measured with and
without the seen-set (the service reads both in the same round trip).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def timeit(fn, n: int) -> dict[str, float]:
    for _ in range(min(50, n)):
        fn()
    t = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn()
        t[i] = time.perf_counter() - t0
    return {"p50_us": float(np.percentile(t, 50) * 1e6), "p99_us": float(np.percentile(t, 99) * 1e6),
            "mean_us": float(t.mean() * 1e6)}


def main(argv: list[str] | None = None) -> int:
    import redis

    from minirec.features.store import open_store
    from minirec.infra.redis_server import redis_server
    from minirec.settings import get_settings
    from services.recommender.features import OnlineFeatures, feast_entity_key, layout_from_feast

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--work", type=Path, default=get_settings().run_path / "bench-serving",
                   help="a bench_serving --work folder holding world.json (default run/bench-serving)")
    p.add_argument("-n", type=int, default=2000)
    p.add_argument("--out", type=Path, default=get_settings().artifacts_path / "bench")
    a = p.parse_args(argv)
    w = json.loads((a.work / "world.json").read_text())
    rds = redis_server(a.work / "redis", "127.0.0.1", w["redis_port"], persist=True)
    rds.start()
    try:
        store = open_store(Path(w["feature_repo"]), project=w["project"], redis_host="127.0.0.1",
                           redis_port=w["redis_port"])
        client = redis.Redis(host="127.0.0.1", port=w["redis_port"])
        reader = OnlineFeatures(client, layout_from_feast(store, "two_tower_v1"))
        fs = store.get_feature_service("two_tower_v1")
        import pandas as pd

        users = pd.read_parquet(Path(w["data_dir"]) / "interactions.parquet", columns=["user_id"])["user_id"]
        users = sorted(users.astype(int).unique().tolist())
        key = feast_entity_key("user_id", users[0], w["project"])
        res = {}
        for b in (1, 32):
            ids = users[:b]
            res[f"feast_get_online_features_{b}"] = timeit(
                lambda ids=ids: store.get_online_features(features=fs, entity_rows={"user_id": ids}).to_dict(), a.n // b * 1 + 200)
            res[f"raw_reader_{b}"] = timeit(lambda ids=ids: reader.read(ids, with_seen=False), a.n)
            res[f"raw_reader_with_seen_{b}"] = timeit(lambda ids=ids: reader.read(ids), a.n)
        res["redis_hgetall_1"] = timeit(lambda: client.hgetall(key), a.n)
        res["redis_ping"] = timeit(lambda: client.ping(), a.n)
        base = res["redis_hgetall_1"]["p50_us"]
        summary = {"features_per_request_us_batch1": res["raw_reader_with_seen_1"]["p50_us"],
                   "features_per_user_us_batch32": res["raw_reader_with_seen_32"]["p50_us"] / 32,
                   "ratio_raw_1_to_hgetall": res["raw_reader_1"]["p50_us"] / base,
                   "ratio_raw_with_seen_1_to_hgetall": res["raw_reader_with_seen_1"]["p50_us"] / base,
                   "ratio_feast_1_to_raw_1": res["feast_get_online_features_1"]["p50_us"] / res["raw_reader_1"]["p50_us"],
                   "ratio_feast_32_to_raw_32": res["feast_get_online_features_32"]["p50_us"]
                   / res["raw_reader_32"]["p50_us"]}
        out = {"summary": summary, "timings": res, "features": len(reader.layout.features),
               "command": "python loadtests/bench_features.py " + " ".join(argv or sys.argv[1:])}
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "features.json").write_text(json.dumps(out, indent=2))
        for k, v in res.items():
            print(f"{k:34s} p50 {v['p50_us']:8.0f} µs   p99 {v['p99_us']:8.0f} µs")
        print(json.dumps(summary, indent=2))
        client.close()
    finally:
        rds.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
