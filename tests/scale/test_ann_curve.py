"""The ANN scale curve at tiny size: row keys, exact recall 1.0, and a poor setting measurably worse."""

from __future__ import annotations

import numpy as np
import pytest

from minirec.scale.ann import KEYS, build, recall_at_k, run_size, searcher
from minirec.scale.vectors import two_tower_vectors

N = 3000


@pytest.fixture(scope="module")
def world():
    items, queries = two_tower_vectors(N, 200, seed=3)
    exact = build("exact", items, threads=1)
    return items, queries, exact


def test_run_size_rows_have_the_interface_keys_and_exact_is_exact():
    rows, sweeps = run_size(N, n_queries=100, n_latency=20, threads=1, seed=1)
    assert [r["index"] for r in rows] == ["exact", "hnsw", "ivfpq"]
    for r in rows:
        assert set(KEYS) <= set(r), set(KEYS) - set(r)
        assert r["items"] == N and r["memory_mb"] > 0 and r["p50_us"] > 0 and r["p99_us"] >= r["p50_us"]
    exact = rows[0]
    assert exact["recall_at_100"] == 1.0 and exact["speedup_vs_exact"] == 1.0
    # the sweep holds every setting, so the chosen point is the fastest one reaching 0.99
    for r in rows[1:]:
        pts = [s for s in sweeps if s["index"] == r["index"] and s["recall"] >= 0.99]
        if r["meets_target"]:
            assert r["p50_us"] == pytest.approx(min(p["p50_us"] for p in pts), abs=0.1)


def test_vectors_are_clustered_not_uniform(world):
    """A query's top-100 by inner product is far more concentrated than uniform noise would give:
    mean cosine among the top-100 items of a query is well above that of random item pairs."""
    items, queries, exact = world
    _, top = exact.index.search(queries[:20], 100)
    v = items[:, :-1]
    within = np.mean([(v[t] @ v[t].T).mean() for t in top])
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, N, 2000), rng.integers(0, N, 2000)
    random_pairs = float(np.mean(np.sum(v[a] * v[b], axis=1)))
    assert within > random_pairs + 0.3, (within, random_pairs)


@pytest.mark.parametrize("kind,poor,good", [
    ("hnsw", {"efSearch": 1}, {"efSearch": 256}),
    ("ivfpq", {"nprobe": 1, "k_factor": 1}, {"nprobe": 64, "k_factor": 8}),
])
def test_a_poor_setting_loses_recall(world, kind, poor, good):
    """k=10 for HNSW: faiss searches with max(efSearch, k), so efSearch=1 only bites when k is small."""
    items, queries, exact = world
    k = 10 if kind == "hnsw" else 100
    _, want = exact.index.search(queries, k)
    built = build(kind, items, hnsw_m=4 if kind == "hnsw" else 32, threads=1)
    r_poor = recall_at_k(searcher(built, poor)(queries, k), want)
    r_good = recall_at_k(searcher(built, good)(queries, k), want)
    assert r_good >= 0.97, r_good
    assert r_poor < r_good - 0.1, (r_poor, r_good)
