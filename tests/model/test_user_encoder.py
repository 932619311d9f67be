"""The serving encoder (minirec.model.user_encoder) builds exactly the tensors of the model's
own two_tower.encode_users, for typical rows and for every odd value an online row can hold."""

from __future__ import annotations

import math

import numpy as np
import torch

from minirec.features.tables import GENRES, LAST_N
from minirec.model.two_tower import USER_FEATURES, TwoTowerConfig, encode_users
from minirec.model.user_encoder import FastUserEncoder


def _config() -> TwoTowerConfig:
    return TwoTowerConfig(user_ids=list(range(1, 51)), item_ids=list(range(100, 400)),
                          occupations=["artist", "engineer", "student"])


def _rows(n: int, seed: int) -> list[dict]:
    """Rows shaped like Feast online reads: ints, floats, lists, numpy scalars."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        share = rng.dirichlet(np.ones(len(GENRES))).tolist()
        rows.append({
            "age_bucket": int(rng.integers(0, 7)), "gender": str(rng.choice(["M", "F"])),
            "occupation": str(rng.choice(["artist", "engineer", "student", "doctor"])),
            "u_cnt_7d": int(rng.integers(0, 30)), "u_cnt_30d": np.int64(rng.integers(0, 90)),
            "u_cnt_all": float(rng.integers(0, 500)), "u_cnt_1h": int(rng.integers(0, 3)),
            "u_cnt_24h": int(rng.integers(0, 10)), "u_mean_rating_30d": float(rng.uniform(1, 5)),
            "u_genre_share_90d": share,
            "last_items": [int(i) for i in rng.integers(90, 420, size=int(rng.integers(0, 2 * LAST_N)))],
        })
    return rows


ODD_ROWS = [
    {},  # no online row at all
    {"age_bucket": None, "last_items": None, "u_genre_share_90d": [0.5]},  # wrong-length share
    {"age_bucket": float("nan"), "last_items": float("nan"), "u_genre_share_90d": float("nan"),
     "u_mean_rating_30d": float("nan"), "u_cnt_7d": None},
    {"age_bucket": 3.0, "gender": "X", "occupation": None, "u_mean_rating_30d": 0.0,
     "u_cnt_all": "not a number", "last_items": []},
    {"age_bucket": np.int64(5), "gender": None, "u_mean_rating_30d": np.float32(4.5),
     "last_items": np.array([100, 101, 999])},
]


def _assert_same(rows: list[dict], ids: list[int]) -> None:
    cfg = _config()
    ref = encode_users({n: [r.get(n) for r in rows] for n in USER_FEATURES}, cfg, ids)
    fast = FastUserEncoder(cfg)(rows, ids)
    assert ref.keys() == fast.keys()
    for k in ref:
        assert ref[k].dtype == fast[k].dtype, (k, ref[k].dtype, fast[k].dtype)
        assert ref[k].shape == fast[k].shape, (k, ref[k].shape, fast[k].shape)
        assert torch.equal(ref[k], fast[k]), (k, ref[k], fast[k])


def test_typical_rows_encode_identically():
    rows = _rows(64, seed=0)
    _assert_same(rows, list(range(1, 65)))  # ids 51..64 are unknown to the config


def test_odd_values_encode_identically():
    _assert_same(ODD_ROWS, [1, 2, 10**9, 50, 7])


def test_the_check_can_fail():
    """A row the fast encoder reads differently shows up as a difference (guards the comparison)."""
    cfg = _config()
    rows = _rows(4, seed=1)
    ref = encode_users({n: [r.get(n) for r in rows] for n in USER_FEATURES}, cfg, [1, 2, 3, 4])
    shifted = [{**r, "u_cnt_7d": (r["u_cnt_7d"] or 0) + 1} for r in rows]
    fast = FastUserEncoder(cfg)(shifted, [1, 2, 3, 4])
    assert not torch.equal(ref["dense"], fast["dense"])
    assert math.isclose(float(fast["dense"][0, 0]), math.log1p(rows[0]["u_cnt_7d"] + 1), rel_tol=1e-6)
