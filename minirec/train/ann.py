"""FAISS index over item vectors, with a measured recall against exact search.

Inner product is the score (the popularity term is one of the dimensions),
so the index is HNSW with METRIC_INNER_PRODUCT; the exact reference is
IndexFlatIP over the same vectors.
"""

from __future__ import annotations

import time

import numpy as np


def build_hnsw(vectors: np.ndarray, m: int = 32, ef_construction: int = 200, ef_search: int = 256):
    """(M, D) float32 -> faiss.IndexHNSWFlat (inner product)."""
    import faiss

    index = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.hnsw.efSearch = ef_search
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def build_exact(vectors: np.ndarray):
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def _latency_us(index, queries: np.ndarray, k: int, n: int = 200) -> dict[str, float]:
    """Single-query latency (batch of 1), microseconds."""
    times = []
    for q in queries[:n]:
        t = time.perf_counter()
        index.search(q[None, :], k)
        times.append((time.perf_counter() - t) * 1e6)
    a = np.asarray(times)
    return {"p50_us": float(np.percentile(a, 50)), "p99_us": float(np.percentile(a, 99)),
            "mean_us": float(a.mean())}


def measure(ann, exact, queries: np.ndarray, k: int = 100) -> dict[str, float]:
    """Recall of ANN top-k against exact top-k (mean over queries) and the latency of each."""
    import faiss

    faiss.omp_set_num_threads(1)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    _, got = ann.search(q, k)
    _, want = exact.search(q, k)
    recall = float(np.mean([len(set(g) & set(w)) / k for g, w in zip(got, want)]))
    return {"k": k, "queries": int(len(q)), "recall": recall, "items": int(exact.ntotal),
            "ann": _latency_us(ann, q, k), "exact": _latency_us(exact, q, k)}
