"""Ranker features for (user, candidate) pairs: one function for training, evaluation and serving.

    user rows (U feature dicts, the `two_tower_v1` Feast service)  --user_matrix-->  (U, F_u)
    item frame (M rows in catalogue order, `two_tower_items_v1`)    --ItemTable-->    (M, F_i) + genres + vectors
    candidates: rows (U, K) into the catalogue, retrieval scores (U, K), best first
        --pair_features-->  X (U*K, F) float32, user-major (row u*K + j = user u, candidate j)

Offline the user rows come from point-in-time frames (minirec.features.training_set), online from
the recommender's Redis read of the same feature service; both pass through `user_matrix`, so a
feature cannot be computed two ways. Missing values are NaN (LightGBM routes them itself).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from minirec.features.tables import GENRES

USER_COLS = ["age_bucket", "is_female", "u_cnt_1h", "u_cnt_24h", "u_cnt_7d", "u_cnt_30d", "u_cnt_all",
             "u_mean_rating_30d", "n_last_items"]
ITEM_COLS = ["year", "i_cnt_7d", "i_cnt_30d", "i_cnt_all", "i_pop_decayed", "n_genres"]
PAIR_COLS = ["retrieval_score", "retrieval_rank", "learned_score", "pop_term", "genre_affinity",
             "sim_last_mean", "sim_last_max", "sim_last_newest"]
FEATURES = USER_COLS + ITEM_COLS + PAIR_COLS  # the column order of X
_NUM = ("age_bucket", "u_cnt_1h", "u_cnt_24h", "u_cnt_7d", "u_cnt_30d", "u_cnt_all", "u_mean_rating_30d")
_NUM_AT = tuple((name, USER_COLS.index(name)) for name in _NUM)  # (feature, column of X_u)
_GENRE_ROW = {g: k for k, g in enumerate(GENRES)}


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return np.nan
    return f if np.isfinite(f) else np.nan


def _seq(v: Any) -> list:
    return [] if v is None or (isinstance(v, float) and np.isnan(v)) else list(v)


def user_matrix(rows: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """U feature dicts -> (U, F_u) numbers, (U, 19) genre shares of the last 90 days, last_items lists."""
    x = np.full((len(rows), len(USER_COLS)), np.nan, dtype=np.float32)
    share = np.zeros((len(rows), len(GENRES)), dtype=np.float32)
    last: list[list[int]] = []
    for u, r in enumerate(rows):
        for name, c in _NUM_AT:
            x[u, c] = _num(r.get(name))
        g = r.get("gender")
        x[u, 1] = np.nan if g is None else float(g == "F")
        items = [int(i) for i in _seq(r.get("last_items"))]
        x[u, USER_COLS.index("n_last_items")] = len(items)
        s = _seq(r.get("u_genre_share_90d"))
        if len(s) == len(GENRES):
            share[u] = np.nan_to_num(np.asarray(s, dtype=np.float32))
        last.append(items)
    return x, share, last


@dataclass(frozen=True)
class ItemTable:
    """What the ranker knows of every catalogue item, in catalogue (index) order."""

    x: np.ndarray  # (M, F_i) float32
    genres: np.ndarray  # (M, 19) float32 multi-hot, rows summing to 1 (0 when no genre)
    unit: np.ndarray  # (M, d) float32 L2-normalised item embeddings of the retrieval model
    pop: np.ndarray  # (M,) float32 log1p(decayed popularity): the retrieval score's popularity column
    row_of: dict[int, int]  # item id -> row

    @classmethod
    def build(cls, items: Any, item_vectors: np.ndarray, item_ids: np.ndarray) -> ItemTable:
        """items: a frame with ITEM features and `item_id` (rows aligned to `item_ids` by id; an id
        missing from it gets NaN features), or a dict of columns already in the order of `item_ids`;
        item_vectors: (M, d+1) the retrieval model's index vectors for the same rows."""
        m = len(item_ids)
        if isinstance(items, pd.DataFrame) and "item_id" in items:  # align the rows to item_ids by id
            items = items.drop_duplicates("item_id").set_index("item_id").reindex(np.asarray(item_ids))
        x = np.full((m, len(ITEM_COLS)), np.nan, dtype=np.float32)
        for c, name in enumerate(ITEM_COLS[:-1]):
            x[:, c] = [_num(v) for v in items[name]]
        x[:, 0] = np.where(x[:, 0] > 0, x[:, 0], np.nan)  # year 0 = unknown
        genres = np.zeros((m, len(GENRES)), dtype=np.float32)
        for k, gs in enumerate(items["genres"]):
            for g in _seq(gs):
                if g in _GENRE_ROW:
                    genres[k, _GENRE_ROW[g]] = 1.0
        x[:, -1] = genres.sum(axis=1)
        genres /= np.maximum(genres.sum(axis=1, keepdims=True), 1.0)
        emb = np.asarray(item_vectors[:, :-1], dtype=np.float32)
        unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return cls(x=x, genres=genres, unit=unit, pop=np.asarray(item_vectors[:, -1], dtype=np.float32),
                   row_of={int(i): r for r, i in enumerate(np.asarray(item_ids).tolist())})


def pair_features(rows: Sequence[Mapping[str, Any]], items: ItemTable, cand: np.ndarray, scores: np.ndarray,
                  pop_weight: float) -> np.ndarray:
    """rows (U dicts), cand (U, K) catalogue rows best first (-1 = none), scores (U, K) -> X (U*K, F).

    pop_term = w * log1p(popularity) is the popularity part of the retrieval score and learned_score
    the rest (the towers' dot product); sim_last_* are cosines between the candidate's embedding and
    the user's recent items (mean, max, the newest one): the sequence signal for warm users."""
    u_n, k_n = cand.shape
    ux, share, last = user_matrix(rows)
    safe = np.clip(cand, 0, None)  # (U, K)
    pop_term = pop_weight * items.pop[safe]
    pair = np.full((u_n, k_n, len(PAIR_COLS)), np.nan, dtype=np.float32)
    pair[..., 0] = scores
    pair[..., 1] = np.arange(k_n, dtype=np.float32)[None, :]
    pair[..., 2] = scores - pop_term
    pair[..., 3] = pop_term
    pair[..., 4] = np.einsum("ug,ukg->uk", share, items.genres[safe])
    for u in range(u_n):
        hist = [items.row_of[i] for i in last[u] if i in items.row_of]
        if hist:
            sims = items.unit[safe[u]] @ items.unit[hist].T  # (K, L), newest first
            pair[u, :, 5], pair[u, :, 6], pair[u, :, 7] = sims.mean(axis=1), sims.max(axis=1), sims[:, 0]
    x = np.concatenate([np.repeat(ux[:, None, :], k_n, axis=1), items.x[safe], pair], axis=2)  # (U, K, F)
    x[cand < 0] = np.nan
    return x.reshape(u_n * k_n, len(FEATURES))
