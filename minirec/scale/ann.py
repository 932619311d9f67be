"""Retrieval cost curve: exact vs HNSW vs IVF-PQ (+ exact re-rank) over catalogue size.

    two_tower_vectors(M items, Q queries)  (minirec.scale.vectors: clustered, the model's layout)
      -> exact top-100 by inner product (IndexFlatIP: the ground truth and the baseline)
      -> per index: build (timed, 2 threads), then per search setting:
           recall@100 against exact over Q queries (batched),
           single-query latency p50/p99 over L queries (1 thread, batch of 1: the serving path)
      -> the cheapest setting (lowest p50) whose recall reaches the target is the curve's point.

HNSW and IVF-PQ search the L2 reduction of inner product used in production
(minirec.train.ann: item x -> [x, sqrt(phi^2 - |x|^2)], query q -> [q, 0]).
IVF-PQ alone loses recall to quantisation; IndexRefineFlat re-ranks its top
k_factor * k candidates by exact distance, which is what lifts it to 0.99
(Jégou et al. 2011, "Product quantization for nearest neighbor search", §4 re-ranking).
Faiss's HNSW search uses max(efSearch, k) as its beam, so efSearch < k is k.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from minirec.train.ann import build_exact, mips_augment
from minirec.train.ann import search as mips_search

KEYS = ("items", "index", "recall_at_100", "p50_us", "p99_us", "speedup_vs_exact", "memory_mb", "build_s")
HNSW_EF = (100, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)  # efSearch sweep (768 gave 0.988 at 1M)
IVF_NPROBE = (1, 4, 8, 16, 32, 64, 128, 256, 512, 1024)  # nprobe sweep (256 gave 0.974 at 1M)
REFINE_K = (2, 4, 8)  # re-rank k_factor sweep


@dataclass
class Built:
    kind: str  # "exact" | "hnsw" | "ivfpq"
    index: object  # faiss index
    build_s: float
    memory_mb: float
    detail: str  # index structure, human readable


def _memory_mb(index) -> float:
    """Bytes of the serialised index (vectors + graph / codes + lists), MiB."""
    import faiss

    return float(faiss.serialize_index(index).nbytes) / 2**20


def build(kind: str, items: np.ndarray, hnsw_m: int = 32, ef_construction: int = 128, threads: int = 2,
          seed: int = 0) -> Built:
    """(M, D) item vectors -> a built index of `kind`, timed with `threads` OpenMP threads."""
    import faiss

    faiss.omp_set_num_threads(threads)
    t0 = time.perf_counter()
    if kind == "exact":
        index, detail = build_exact(items), "IndexFlatIP (brute force)"
    elif kind == "hnsw":
        aug, _ = mips_augment(items)
        index = faiss.IndexHNSWFlat(aug.shape[1], hnsw_m)
        index.hnsw.efConstruction = ef_construction
        index.add(aug)
        detail = f"HNSW{hnsw_m},Flat efConstruction={ef_construction} over MIPS-augmented vectors"
    elif kind == "ivfpq":
        aug, _ = mips_augment(items)
        n, d = aug.shape
        nlist = max(16, min(int(4 * np.sqrt(n)), n // 39))  # ~4 sqrt(M) lists; k-means wants >= 39 points each
        m = next(m for m in (22, 16, 11, 8, 4, 2, 1) if d % m == 0)  # sub-quantisers; 66 dims -> 22 x 3
        quantizer = faiss.IndexFlatL2(d)
        ivf = faiss.IndexIVFPQ(quantizer, d, nlist, m, 8)
        ivf.do_polysemous_training = False  # only for Hamming pre-filtering, which is not used; costs ~25 s
        ivf.cp.niter = 10  # k-means iterations: 10 is within noise of 25 for recall here, 2.5x faster
        rng = np.random.default_rng(seed)
        sample = aug[rng.choice(n, size=min(n, 50 * nlist), replace=False)]
        ivf.train(sample)
        index = faiss.IndexRefineFlat(ivf)  # keeps the full vectors for the exact re-rank
        index.add(aug)
        detail = f"IVF{nlist},PQ{m}x8 + IndexRefineFlat re-rank over MIPS-augmented vectors"
    else:
        raise ValueError(f"unknown index kind {kind!r} (exact, hnsw, ivfpq)")
    build_s = time.perf_counter() - t0
    return Built(kind, index, build_s, _memory_mb(index), detail)


def settings(kind: str) -> list[dict[str, int]]:
    """The search-parameter sweep for `kind`, cheapest first."""
    if kind == "exact":
        return [{}]
    if kind == "hnsw":
        return [{"efSearch": ef} for ef in HNSW_EF]
    return [{"nprobe": p, "k_factor": kf} for p in IVF_NPROBE for kf in REFINE_K]


def searcher(built: Built, setting: dict[str, int]) -> Callable[[np.ndarray, int], np.ndarray]:
    """A function (B, D) queries, k -> (B, k) row ids with `setting` applied to this call only."""
    import faiss

    if built.kind == "exact":
        return lambda q, k: built.index.search(q, k)[1]
    if built.kind == "hnsw":
        params = faiss.SearchParametersHNSW(efSearch=setting["efSearch"])
    else:
        params = faiss.IndexRefineSearchParameters(
            k_factor=setting["k_factor"], base_index_params=faiss.SearchParametersIVF(nprobe=setting["nprobe"]))
    return lambda q, k: mips_search(built.index, q, k, params)[0]


def recall_at_k(got: np.ndarray, want: np.ndarray) -> float:
    """Mean over queries of |got ∩ want| / k, both (B, k) row ids."""
    k = want.shape[1]
    return float(np.mean([len(set(g) & set(w)) / k for g, w in zip(got, want, strict=True)]))


def latency_us(fn: Callable[[np.ndarray, int], np.ndarray], queries: np.ndarray, k: int) -> dict[str, float]:
    """Single-query (batch of 1) latency over the given queries, 1 thread, microseconds."""
    import faiss

    faiss.omp_set_num_threads(1)
    fn(queries[:1], k)  # warm
    times = np.empty(len(queries))
    for i in range(len(queries)):
        t = time.perf_counter()
        fn(queries[i:i + 1], k)
        times[i] = (time.perf_counter() - t) * 1e6
    return {"p50_us": float(np.percentile(times, 50)), "p99_us": float(np.percentile(times, 99))}


def sweep(built: Built, queries: np.ndarray, want: np.ndarray, lat_queries: np.ndarray, k: int = 100,
          setting_list: Iterable[dict[str, int]] | None = None, threads: int = 2) -> list[dict]:
    """Recall and latency of every setting of `built` (the points of its recall/speed trade-off)."""
    import faiss

    out = []
    for s in (settings(built.kind) if setting_list is None else setting_list):
        fn = searcher(built, s)
        faiss.omp_set_num_threads(threads)
        rec = recall_at_k(fn(queries, k), want)
        out.append({"setting": s, "recall": rec, **latency_us(fn, lat_queries, k)})
    return out


def curve_point(items_n: int, built: Built, points: list[dict], exact_p50: float, target: float) -> dict:
    """The cheapest point reaching `target` recall (else the best-recall point) as one `ann` row."""
    ok = [p for p in points if p["recall"] >= target]
    best = min(ok, key=lambda p: p["p50_us"]) if ok else max(points, key=lambda p: p["recall"])
    return {"items": items_n, "index": built.kind, "recall_at_100": round(best["recall"], 4),
            "p50_us": round(best["p50_us"], 1), "p99_us": round(best["p99_us"], 1),
            "speedup_vs_exact": round(exact_p50 / best["p50_us"], 2), "memory_mb": round(built.memory_mb, 1),
            "build_s": round(built.build_s, 2), "setting": best["setting"], "meets_target": bool(ok),
            "detail": built.detail}


def run_size(n_items: int, kinds: Iterable[str] = ("exact", "hnsw", "ivfpq"), n_queries: int = 1000,
             n_latency: int = 200, k: int = 100, target: float = 0.99, threads: int = 2, seed: int = 0,
             progress: Callable[[str], None] = lambda s: None) -> tuple[list[dict], list[dict]]:
    """One catalogue size -> (`ann` rows, one per index; sweep rows, one per index and setting)."""
    import faiss

    from minirec.scale.vectors import two_tower_vectors

    items, queries = two_tower_vectors(n_items, n_queries + n_latency, seed=seed)
    rec_q, lat_q = queries[:n_queries], queries[n_queries:]
    exact = build("exact", items, threads=threads)
    faiss.omp_set_num_threads(threads)
    _, want = exact.index.search(rec_q, k)  # (Q, k) ground truth
    rows, sweeps, exact_p50 = [], [], None
    for kind in kinds:
        progress(f"{n_items:,} items: build {kind}")
        built = exact if kind == "exact" else build(kind, items, threads=threads, seed=seed)
        progress(f"{n_items:,} items: search {kind} ({len(settings(kind))} settings)")
        points = sweep(built, rec_q, want, lat_q, k, threads=threads)
        if kind == "exact":
            exact_p50 = points[0]["p50_us"]
        if exact_p50 is None:
            exact_p50 = sweep(exact, rec_q[:1], want[:1], lat_q, k)[0]["p50_us"]
        rows.append(curve_point(n_items, built, points, exact_p50, target))
        sweeps += [{"items": n_items, "index": kind, **p, "speedup_vs_exact": exact_p50 / p["p50_us"]}
                   for p in points]
        del built
    return rows, sweeps
