"""Top-K ranking metrics over the full catalogue.

Conventions (the tests check them against hand-computed values):
- ranking: descending score; ties broken by the lower item index first
  (a stable sort), so results do not depend on the sort algorithm;
- excluded (already seen) items get score -inf and never appear in the top K;
- relevance is binary; `relevant` is the set of items the user interacted
  with in the evaluation period and had not seen before;
- Recall@K = hits / |relevant|; NDCG@K = DCG / IDCG with
  DCG = sum over hit positions p (1-based) of 1/log2(p + 1) and IDCG the DCG
  of min(|relevant|, K) hits at the top; Hit@K = 1 if any hit;
  MRR@K = 1 / position of the first hit (0 if none within K);
- a user with no relevant item gets NaN for every metric and is left out of
  the averages (the number of users averaged is reported);
- Coverage@K = distinct items in all users' top K / catalogue size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

KS = (10, 50, 100)


def top_k(scores: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """scores (U, M), exclude (U, M) bool -> (U, k) item indices, best first."""
    s = np.array(scores, dtype=np.float64, copy=True)
    if exclude is not None:
        s[exclude] = -np.inf
    k = min(k, s.shape[1])
    # stable argsort on -score: equal scores keep ascending item index
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def user_metrics(ranked: np.ndarray, relevant: set[int] | Sequence[int], k: int) -> dict[str, float]:
    """Metrics for one user: ranked (>= k,) item indices, relevant item set."""
    rel = set(int(i) for i in relevant)
    if not rel:
        return {"recall": np.nan, "ndcg": np.nan, "hit": np.nan, "mrr": np.nan}
    hits = np.array([int(i) in rel for i in ranked[:k]], dtype=bool)  # (k,)
    positions = np.flatnonzero(hits) + 1  # 1-based
    dcg = float(np.sum(1.0 / np.log2(positions + 1)))
    idcg = float(np.sum(1.0 / np.log2(np.arange(1, min(len(rel), k) + 1) + 1)))
    return {
        "recall": hits.sum() / len(rel),
        "ndcg": dcg / idcg,
        "hit": float(hits.any()),
        "mrr": 1.0 / positions[0] if len(positions) else 0.0,
    }


def evaluate_rankings(ranked: np.ndarray, relevant: Sequence[set[int]], n_items: int,
                      ks: Sequence[int] = KS) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """ranked (U, >= max(ks)) -> (averages {"ndcg@10": ...}, per-user arrays (U,) with NaN for no-relevant)."""
    per_user: dict[str, np.ndarray] = {}
    for k in ks:
        rows = [user_metrics(ranked[u], relevant[u], k) for u in range(len(relevant))]
        for name in ("ndcg", "recall", "hit", "mrr"):
            per_user[f"{name}@{k}"] = np.array([r[name] for r in rows], dtype=np.float64)
    return summarize(per_user, ranked, n_items, ks), per_user


def summarize(per_user: dict[str, np.ndarray], ranked: np.ndarray, n_items: int, ks: Sequence[int] = KS,
              rows: np.ndarray | None = None) -> dict[str, float]:
    """Averages of per-user metrics (NaN users left out), coverage and the user count, over `rows`
    ((U,) bool, all users by default): the same keys for the whole population and for a group."""
    rows = np.ones(len(ranked), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    summary = {key: float(np.nanmean(v[rows])) if np.isfinite(v[rows]).any() else float("nan")
               for key, v in per_user.items()}
    for k in ks:
        summary[f"coverage@{k}"] = coverage(ranked[rows, :k], n_items)
    first = next(iter(per_user.values()))
    summary["users"] = int(np.isfinite(first[rows]).sum())
    return summary


def coverage(ranked: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one user's list."""
    return float(len(np.unique(ranked)) / n_items) if ranked.size else 0.0


def self_information(history_items: np.ndarray, n_items: int) -> np.ndarray:
    """(M,) -log2 p(item), p from the history's counts with add-one smoothing: the novelty of recommending it."""
    counts = np.bincount(np.asarray(history_items, dtype=np.int64), minlength=n_items).astype(np.float64)
    return -np.log2((counts + 1.0) / (counts.sum() + n_items))


def novelty(ranked: np.ndarray, info: np.ndarray, rows: np.ndarray | None = None) -> float:
    """Mean self-information (bits) of the recommended items over users `rows` (Zhou et al. 2010, PNAS,
    "Solving the apparent diversity-accuracy dilemma of recommender systems"): higher = less popular."""
    r = ranked if rows is None else ranked[np.asarray(rows, dtype=bool)]
    return float(info[r].mean()) if r.size else float("nan")


def paired_bootstrap(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0,
                     level: float = 0.95) -> dict[str, float]:
    """CI of mean(a - b) over users, resampling users with replacement (paired).

    a, b: (U,) per-user metric of two models on the same users; NaN rows dropped."""
    ok = np.isfinite(a) & np.isfinite(b)
    d = (a - b)[ok]
    if len(d) == 0:
        raise ValueError("no user with a finite metric in both models")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(n_boot, len(d)))
    means = d[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return {"mean": float(d.mean()), "low": float(lo), "high": float(hi), "users": int(len(d)),
            "n_boot": n_boot}
