"""Measured cost curves over data size (`make bench-scale`) -> artifacts/bench/scale.json + one PNG per curve.

    ann:   FAISS exact vs HNSW vs IVF-PQ(+exact re-rank) at 10k, 100k, 1M items
           (minirec.scale.ann over minirec.scale.vectors' clustered two-tower vectors):
           recall@100 vs exact, single-query p50/p99 (1 thread), speedup, memory, build time
           -> scale.json["ann"] (one row per size and index: the cheapest setting reaching
           recall 0.99) and ["ann_sweep"] (every setting), ann.png
    stream: events/s with 1, 2, 3 `python -m services.stream` processes in one group on 3
           partitions; lag recovery after pausing the group (loadtests/scale_stream.py)
           -> scale.json["stream"], ["stream_lag_recovery"], stream_scale.png

    online: Redis memory per user and read p50/p99 (1 user, batch of 32) at 10k, 100k, 1M users:
           Feast's encoding (written by Feast: materialize from the offline parquet, or
           write_to_online_store above --feast-max users) vs a packed record per user, on one
           fresh redis-server per size (minirec.scale.online) -> scale.json["online"], online.png
    train: two-tower epoch time on CPU at 100k, 1M, 10M synthetic interactions (timed batches of
           the trainer's step x batches per epoch) and the interactions at which an epoch takes
           1 h (minirec.scale.training) -> scale.json["train"], ["train_crossing"], train.png

Each curve rewrites only its own keys of scale.json, so curves can be rerun one at a time
(--curves ann, or --curves online,train). Heavy: the 1M-item builds take minutes on 2 cores; run
it under `nice`. --quick runs tiny sizes (tests, a first look).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# OpenMP threads that spin while waiting made a 2-thread faiss k-means 4.5x SLOWER than 1 thread on
# these shared, loaded cores (31 s vs 7 s; 4.7 s with PASSIVE): yield instead. Set before faiss loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CURVES = ("ann", "stream", "online", "train")


def run_stream(quick: bool, out: Path) -> dict:
    """Throughput with 1, 2, 3 processes on 3 partitions and lag recovery after a pause -> stream.png."""
    import shutil
    import tempfile

    from tqdm import tqdm

    from loadtests.bench_stream import setup_world
    from loadtests.scale_stream import lag_recovery, throughput
    from minirec.scale.plots import plot_stream

    root = Path(tempfile.mkdtemp(prefix="scale_stream_"))
    redis, kafka, repo = setup_world(root)
    world = (redis, kafka, repo, root)
    n, rate, pause = (3_000, 500, 3.0) if quick else (30_000, 2_000, 8.0)
    rows, recov = [], []
    try:
        for k in tqdm((1, 2, 3), desc="stream throughput", unit="group"):
            rows.append(throughput(world, k, n, root))
            tqdm.write(json.dumps(rows[-1]))
        for k in tqdm((1, 3), desc="stream lag recovery", unit="group"):
            recov.append(lag_recovery(world, k, rate, pause, root))
            tqdm.write(json.dumps(recov[-1]))
    finally:
        kafka.stop()
        redis.stop()
        shutil.rmtree(root, ignore_errors=True)
    plot_stream(rows, recov, out / "stream_scale.png")
    return {"stream": rows, "stream_lag_recovery": recov,
            "stream_note": f"{os.cpu_count()} cores shared by Kafka, Redis, the producer and the processors"}


def run_ann(sizes: list[int], quick: bool, threads: int, out: Path) -> dict:
    """The ANN curve over `sizes` -> {"ann": rows, "ann_sweep": rows}; writes ann.png."""
    from tqdm import tqdm

    from minirec.scale.ann import run_size
    from minirec.scale.plots import plot_ann

    kinds = ("exact", "hnsw", "ivfpq")
    rows, sweeps = [], []
    with tqdm(total=len(sizes) * len(kinds), desc="ann", unit="index") as bar:
        def progress(msg: str) -> None:
            bar.set_postfix_str(msg)
            if msg.split(": ")[1].startswith("search"):
                bar.update(1)

        for n in sizes:
            r, s = run_size(n, kinds, n_queries=200 if quick else 1000, n_latency=50 if quick else 200,
                            threads=threads, progress=progress)
            rows += r
            sweeps += s
            for row in r:
                tqdm.write(json.dumps({k: row[k] for k in row if k != "detail"}))
    plot_ann(rows, sweeps, out / "ann.png")
    return {"ann": rows, "ann_sweep": sweeps}


def run_online(sizes: list[int], feast_max: int, n_reads: int, out: Path) -> dict:
    """The online-store curve over `sizes` users -> {"online": rows}; writes online.png."""
    import tempfile

    from tqdm import tqdm

    from minirec.scale.online import run_size
    from minirec.scale.plots import plot_online
    from services.recommender.features import OnlineFeatures, layout_from_feast

    def feast_reader(client, store):  # the recommender's reader of Feast's Redis layout
        reader = OnlineFeatures(client, layout_from_feast(store, "two_tower_v1"))
        return lambda ids: reader.read(ids, with_seen=False)[0]

    rows = []
    bar = tqdm(sizes, desc="online store", unit="size")
    for n in bar:
        root = Path(tempfile.mkdtemp(prefix="scale_online_"))
        got = run_size(n, root, feast_reader, feast_max=feast_max, n_reads=n_reads, progress=bar.set_postfix_str)
        rows += got
        for row in got:
            tqdm.write(json.dumps(row))
    plot_online(rows, out / "online.png")
    return {"online": rows, "online_note": (
        f"one redis-server per size; {n_reads} single-user and {max(50, n_reads // 8)} 32-user reads per "
        f"encoding, alternating; Feast writes by materialize up to {feast_max:,} users, by "
        f"write_to_online_store above; {os.cpu_count()} cores shared with other work")}


def run_train(sizes: list[int], n_batches: int, threads: int, out: Path) -> dict:
    """The training curve over `sizes` interactions -> {"train": rows, "train_crossing": fit}; train.png."""
    import tempfile

    from tqdm import tqdm

    from minirec.scale.plots import plot_train
    from minirec.scale.training import crossing, run_size

    rows = []
    root = Path(tempfile.mkdtemp(prefix="scale_train_"))
    bar = tqdm(sizes, desc="training", unit="size")
    for n in bar:
        rows.append(run_size(n, root, n_batches=n_batches, threads=threads, progress=bar.set_postfix_str))
        tqdm.write(json.dumps(rows[-1]))
    cross = crossing(rows)
    plot_train(rows, cross, out / "train.png")
    return {"train": rows, "train_crossing": cross}


def _names(text: str) -> list[str]:
    """'online,train' or 'online' -> names; each must be a known curve."""
    names = [t for t in text.split(",") if t]
    bad = sorted(set(names) - set(CURVES))
    if bad:
        raise argparse.ArgumentTypeError(f"unknown curve {', '.join(bad)} (choose from {', '.join(CURVES)})")
    return names


def main(argv: list[str] | None = None) -> int:
    from minirec.scale.plots import plot_ann, plot_online
    from minirec.settings import get_settings

    s = get_settings()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--curves", "--parts", nargs="+", type=_names, default=[list(CURVES)],
                   help=f"curves to run, space or comma separated (default all: {','.join(CURVES)})")
    p.add_argument("--sizes", type=int, nargs="+", default=None,
                   help="catalogue sizes for the ann curve (default 10000 100000 1000000; --quick: 2000 5000); "
                        "rows of other sizes already in scale.json are kept")
    p.add_argument("--online-sizes", type=int, nargs="+", default=None,
                   help="user counts for the online curve (default 10000 100000 1000000; --quick: 1000 3000); "
                        "rows of other sizes already in scale.json are kept")
    p.add_argument("--feast-max", type=int, default=100_000,
                   help="largest user count Feast writes by materialize; above it write_to_online_store")
    p.add_argument("--reads", type=int, default=4000, help="single-user reads per encoding and size")
    p.add_argument("--train-sizes", type=int, nargs="+", default=None,
                   help="interactions for the training curve (default 100000 1000000 10000000; "
                        "--quick: 20000 60000)")
    p.add_argument("--train-batches", type=int, default=40, help="timed trainer steps per size")
    p.add_argument("--train-threads", type=int, default=2, help="torch threads for the training curve")
    p.add_argument("--quick", action="store_true", help="tiny sizes and fewer queries (tests, a first look)")
    p.add_argument("--threads", type=int, default=2, help="OpenMP threads for builds and batched recall")
    p.add_argument("--out", type=Path, default=s.artifacts_path / "bench")
    a = p.parse_args(argv)

    a.curves = [c for group in a.curves for c in group]
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / "scale.json"

    def save(keys: dict) -> None:  # re-read first: another run may have written other curves meanwhile
        result = json.loads(path.read_text()) if path.exists() else {}
        result.update(keys)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result, indent=2))
        tmp.replace(path)

    def keep_other_sizes(rows: list[dict], key: str, size: str, sizes: list[int]) -> list[dict]:
        """The new rows plus the file's rows of sizes not rerun (rerunning only 1M keeps 10k and 100k)."""
        old = json.loads(path.read_text()).get(key, []) if path.exists() else []
        return sorted([r for r in old if r[size] not in sizes] + rows, key=lambda r: r[size])

    if "ann" in a.curves:
        sizes = a.sizes or ([2_000, 5_000] if a.quick else [10_000, 100_000, 1_000_000])
        new = run_ann(sizes, a.quick, a.threads, a.out)
        for key in ("ann", "ann_sweep"):
            new[key] = keep_other_sizes(new[key], key, "items", sizes)
        plot_ann(new["ann"], new["ann_sweep"], a.out / "ann.png")
        save(new)
    if "stream" in a.curves:
        save(run_stream(a.quick, a.out))
    if "online" in a.curves:
        sizes = a.online_sizes or ([1_000, 3_000] if a.quick else [10_000, 100_000, 1_000_000])
        new = run_online(sizes, a.feast_max, 500 if a.quick else a.reads, a.out)
        new["online"] = keep_other_sizes(new["online"], "online", "users", sizes)
        plot_online(new["online"], a.out / "online.png")
        save(new)
    if "train" in a.curves:
        sizes = a.train_sizes or ([20_000, 60_000] if a.quick else [100_000, 1_000_000, 10_000_000])
        save(run_train(sizes, 5 if a.quick else a.train_batches, a.train_threads, a.out))
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
