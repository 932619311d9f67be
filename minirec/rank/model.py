"""The ranking stage's model: LightGBM with the LambdaRank objective over the top-K retrieval candidates.

Why gradient-boosted trees and not a DCN-style network: the ranker's input is ~23 tabular features
(counts, shares, scores) for ~20k (user, candidate) rows per run, where boosted trees are the
strong default and need no feature scaling; it trains in seconds on the 2 CPU cores this project
runs on; no monotone constraints or embeddings are needed; and inference is one call per batch
on a (B*K, F) float matrix, well under a millisecond of tree walking per user. LambdaRank optimises
NDCG directly over each user's candidate list (Burges 2010, "From RankNet to LambdaRank to
LambdaMART: An Overview", MSR-TR-2010-82; LightGBM docs, `objective=lambdarank`).

    Ranker.fit(X (N, F), y (N,) 0/1, groups (Q,) list lengths) ;  Ranker.predict(X) -> (N,) scores
    saved as <dir>/model.txt (LightGBM text format) + <dir>/ranker.json (features, params, rounds)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from minirec.rank.features import FEATURES, USER_COLS, user_matrix

SEGMENTS = ("warm", "cold")
K_CANDIDATES = 100  # retrieval hands the ranker this many unseen candidates per user
PARAMS: dict[str, Any] = {
    "objective": "lambdarank", "metric": "ndcg", "ndcg_eval_at": [10], "lambdarank_truncation_level": 20,
    "learning_rate": 0.03, "num_leaves": 4, "min_data_in_leaf": 200, "feature_fraction": 0.8,
    "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0, "num_threads": 1, "verbose": -1,
}  # tiny trees, strong leaf minimum: ~200 queries of 100 candidates each, most of them cold users.
# One thread: on the shared 2-core machine LightGBM's OpenMP threads spin against other processes
# (the train_ranker step took 959 s instead of ~70 s at load average 15 with 2 threads).
GRID: tuple[dict[str, Any], ...] = (  # tree settings compared out of fold on validation (pipeline/ranking.py)
    {},
    # {"learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 50} lost out of fold on validation
    # (NDCG@10 0.3676 at its best rounds vs 0.3778, run r16) and is no longer tried: it doubled the step
)


@dataclass
class Ranker:
    booster: Any  # lightgbm.Booster
    rounds: int
    params: dict[str, Any] = field(default_factory=dict)
    features: list[str] = field(default_factory=lambda: list(FEATURES))
    # the users whose lists it reorders: "warm" (a non-empty recent-items list) and/or "cold"; chosen
    # out of fold on validation (pipeline/ranking.py); the others keep retrieval order
    segments: tuple[str, ...] = SEGMENTS

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, groups: np.ndarray, rounds: int, seed: int = 0,
            params: dict[str, Any] | None = None) -> Ranker:
        import lightgbm as lgb

        p = {**PARAMS, **(params or {}), "seed": seed}
        data = lgb.Dataset(x, label=y, group=groups, feature_name=list(FEATURES), free_raw_data=True)
        return cls(booster=lgb.train(p, data, num_boost_round=rounds), rounds=rounds, params=p)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(N, F) -> (N,) float64 ranking scores (higher first); 1 thread: called inside a request."""
        if x.shape[1] != len(self.features):
            raise ValueError(f"ranker expects {len(self.features)} features, got {x.shape[1]}")
        return self.booster.predict(x, num_threads=1)

    def predict_lists(self, x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """(U*K, F) user-major rows -> (U, K) scores; a user outside `segments` gets -j for candidate j,
        which rerank_order turns back into retrieval order."""
        keep = self.reorders(x, shape)  # (U,)
        p = np.zeros(shape, dtype=np.float64)
        if keep.any():  # only the reordered users' rows go through the booster (rows are independent)
            p[keep] = self.predict(x.reshape(*shape, -1)[keep].reshape(-1, x.shape[1])).reshape(-1, shape[1])
        return retrieval_order_outside(p, keep)

    def reorders(self, x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """(U*K, F) user-major rows -> (U,) bool: the user is in `segments`, so their list is reordered."""
        return in_segments(x[::shape[1], FEATURES.index("n_last_items")], self.segments)

    def reorders_users(self, rows: list[dict[str, Any]]) -> np.ndarray:
        """(U,) user feature dicts -> (U,) bool, as `reorders` (same n_last_items column of user_matrix),
        before any pair feature is built: serving builds features only for these users."""
        return in_segments(user_matrix(rows)[0][:, USER_COLS.index("n_last_items")], self.segments)

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(path / "model.txt"))
        (path / "ranker.json").write_text(json.dumps({"features": self.features, "rounds": self.rounds,
                                                      "params": self.params, "k_candidates": K_CANDIDATES,
                                                      "segments": list(self.segments)},
                                                     indent=2))

    @classmethod
    def load(cls, path: Path) -> Ranker:
        import lightgbm as lgb

        meta = json.loads((path / "ranker.json").read_text())
        if meta["features"] != list(FEATURES):
            raise ValueError(f"ranker in {path} was trained on other features ({meta['features']}); retrain")
        return cls(booster=lgb.Booster(model_file=str(path / "model.txt")), rounds=int(meta["rounds"]),
                   params=meta["params"], features=meta["features"],
                   segments=tuple(meta.get("segments", SEGMENTS)))


def retrieval_order_outside(scores: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """(U, K) ranker scores, (U,) bool -> the scores, with -j for candidate j of every user not kept
    (rerank_order turns that back into retrieval order)."""
    return np.where(keep[:, None], scores, -np.arange(scores.shape[1], dtype=np.float64)[None, :])


def in_segments(n_last_items: np.ndarray, segments: tuple[str, ...]) -> np.ndarray:
    """(U,) recent-items list lengths (NaN = unknown, read as cold) -> (U,) bool: the user is in `segments`."""
    warm = np.nan_to_num(np.asarray(n_last_items, dtype=np.float64)) > 0
    return np.where(warm, "warm" in segments, "cold" in segments)


def rerank_order(ranker_scores: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """(U, K) ranker scores, (U, K) candidate rows (-1 = none) -> (U, K) column order, best first.

    Ties keep retrieval order (stable sort); padding (-1) stays last."""
    s = np.where(cand >= 0, ranker_scores, -np.inf)
    return np.argsort(-s, axis=1, kind="stable")
