"""Measured cost curves over data size (`make bench-scale`) -> artifacts/bench/scale.json + one PNG per curve.

    ann:   FAISS exact vs HNSW vs IVF-PQ(+exact re-rank) at 10k, 100k, 1M items
           (minirec.scale.ann over minirec.scale.vectors' clustered two-tower vectors):
           recall@100 vs exact, single-query p50/p99 (1 thread), speedup, memory, build time
           -> scale.json["ann"] (one row per size and index: the cheapest setting reaching
           recall 0.99) and ["ann_sweep"] (every setting), ann.png
    stream: events/s with 1, 2, 3 `python -m services.stream` processes in one group on 3
           partitions; lag recovery after pausing the group (loadtests/scale_stream.py)
           -> scale.json["stream"], ["stream_lag_recovery"], stream_scale.png

Each curve rewrites only its own keys of scale.json, so curves can be rerun one at a time
(--curves ann). Heavy: the 1M-item builds take minutes on 2 cores; run it under `nice`.
--quick runs tiny sizes (tests, a first look).
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

CURVES = ("ann", "stream")


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


def main(argv: list[str] | None = None) -> int:
    from minirec.settings import get_settings

    s = get_settings()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--curves", nargs="+", choices=CURVES, default=list(CURVES))
    p.add_argument("--sizes", type=int, nargs="+", default=None,
                   help="catalogue sizes for the ann curve (default 10000 100000 1000000; --quick: 2000 5000)")
    p.add_argument("--quick", action="store_true", help="tiny sizes and fewer queries (tests, a first look)")
    p.add_argument("--threads", type=int, default=2, help="OpenMP threads for builds and batched recall")
    p.add_argument("--out", type=Path, default=s.artifacts_path / "bench")
    a = p.parse_args(argv)

    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / "scale.json"
    result = json.loads(path.read_text()) if path.exists() else {}
    if "ann" in a.curves:
        sizes = a.sizes or ([2_000, 5_000] if a.quick else [10_000, 100_000, 1_000_000])
        result.update(run_ann(sizes, a.quick, a.threads, a.out))
    if "stream" in a.curves:
        result.update(run_stream(a.quick, a.out))
    path.write_text(json.dumps(result, indent=2))
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
