"""The serving copy of `two_tower.encode_users`: the same tensors from feature dicts, no pandas.

    rows (B feature dicts, Feast `two_tower_v1` names) + user ids (B,)
        -> {"uid" (B,), "age" (B,), "gender" (B,), "occ" (B,), "hist" (B, 20), "dense" (B, 25)}

encode_users builds a pandas Series per column (about 4 ms per call on this machine, most of a
recommendation's CPU); this reads the dicts directly, ~20x faster. It lives beside the model
because it must match it: tests/model/test_user_encoder.py checks tensor-for-tensor equality
with encode_users, and tests/serving/test_features.py does so again on real online rows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _number(v: Any) -> float:
    """Nullable number -> float, null/NaN/non-numeric -> 0 (as two_tower._num)."""
    if v is None:
        return 0.0
    try:
        f = float(v)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(f) else f


class FastUserEncoder:
    """Vocabularies of one TwoTowerConfig, built once; calling it encodes a batch of users."""

    def __init__(self, cfg: Any):
        from minirec.features.tables import GENRES, LAST_N
        from minirec.model.two_tower import COUNT_FEATURES, N_AGE

        self.uid = {u: k + 1 for k, u in enumerate(cfg.user_ids)}
        self.item = {i: k + 1 for k, i in enumerate(cfg.item_ids)}
        self.occ = {o: k + 1 for k, o in enumerate(cfg.occupations)}
        self.n_genres, self.last_n, self.n_age = len(GENRES), LAST_N, N_AGE
        self.counts = COUNT_FEATURES

    def __call__(self, rows: list[dict[str, Any]], user_ids: list[int]) -> dict[str, Any]:
        import torch

        b = len(user_ids)
        hist = np.zeros((b, self.last_n), dtype=np.int64)  # (B, 20) item index + 1, 0 = padding
        dense = np.zeros((b, len(self.counts) + 1 + self.n_genres), dtype=np.float64)  # (B, 25)
        age = np.empty(b, dtype=np.int64)
        for r, row in enumerate(rows):
            items = row.get("last_items")
            if items is not None and not (isinstance(items, float) and math.isnan(items)):
                idx = [self.item.get(int(i), 0) for i in list(items)[: self.last_n]]
                hist[r, : len(idx)] = idx
            for c, name in enumerate(self.counts):
                dense[r, c] = _number(row.get(name))
            mr = _number(row.get("u_mean_rating_30d"))
            dense[r, len(self.counts)] = (mr - 3.0) / 2.0 if mr > 0 else 0.0
            share = row.get("u_genre_share_90d")
            if share is not None and not (isinstance(share, float) and math.isnan(share)) \
                    and len(share) == self.n_genres:
                dense[r, len(self.counts) + 1:] = np.asarray(share, dtype=np.float64)
            a = row.get("age_bucket")
            age[r] = self.n_age - 1 if a is None or (isinstance(a, float) and math.isnan(a)) else int(_number(a))
        dense[:, : len(self.counts)] = np.log1p(dense[:, : len(self.counts)])
        return {
            "uid": torch.as_tensor([self.uid.get(int(u), 0) for u in user_ids], dtype=torch.long),  # (B,)
            "age": torch.as_tensor(age),  # (B,)
            "gender": torch.as_tensor([{"M": 1, "F": 2}.get(r.get("gender"), 0) for r in rows], dtype=torch.long),
            "occ": torch.as_tensor([self.occ.get(r.get("occupation"), 0) for r in rows], dtype=torch.long),
            "hist": torch.as_tensor(hist),  # (B, 20)
            "dense": torch.as_tensor(dense, dtype=torch.float32),  # (B, 25)
        }
