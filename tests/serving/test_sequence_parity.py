"""The recommender encodes users with the sequence tower exactly as the offline pipeline does:
ModelVersion.user_vectors (online feature dicts, FastUserEncoder) == two_tower.user_vectors
(feature frames, encode_users) for an attention-encoder model, and the order of last_items counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from minirec.model.two_tower import USER_FEATURES, TwoTower, TwoTowerConfig, user_vectors
from services.recommender.retrieval import ModelVersion
from tests.model.test_user_encoder import ODD_ROWS, _rows


def _model() -> TwoTower:
    torch.manual_seed(0)
    cfg = TwoTowerConfig(user_ids=list(range(1, 51)), item_ids=list(range(100, 400)),
                         occupations=["artist", "engineer", "student"], dim=16, id_dim=16, hidden=32,
                         user_encoder="attention", pop_weight=1.5)
    return TwoTower(cfg).eval()


def _version(model: TwoTower) -> ModelVersion:
    empty = np.zeros((0, model.cfg.dim + 1), dtype=np.float32)
    return ModelVersion(tag="t:1", model=model, index=None, item_vectors=empty, item_ids=np.zeros(0, np.int64),
                        item_norm=empty, row_of={}, popular=[], titles={})


def test_served_user_vector_equals_offline_one_for_the_sequence_tower():
    model = _model()
    rows = _rows(40, seed=3) + ODD_ROWS
    ids = list(range(1, len(rows) + 1))
    served = _version(model).user_vectors(rows, ids)  # (B, d+1)
    frame = pd.DataFrame({n: [r.get(n) for r in rows] for n in USER_FEATURES})
    offline = user_vectors(model, frame, ids)
    assert served.shape == offline.shape == (len(rows), 17)
    np.testing.assert_allclose(served, offline, rtol=0, atol=1e-5)
    assert np.isfinite(served).all()


def test_the_sequence_tower_reads_the_order_of_recent_items():
    model = _model()
    row = {"last_items": [101, 150, 230, 399, 120], "gender": "F", "age_bucket": 2}
    flipped = dict(row, last_items=row["last_items"][::-1])
    q = _version(model).user_vectors([row, flipped], [7, 7])
    assert np.abs(q[0] - q[1]).max() > 1e-4  # a mean-pooled tower would give the same vector
