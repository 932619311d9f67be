"""minirec.model.ensemble: N two-towers as one dot product, saved and loaded like one model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from minirec.features.tables import GENRES
from minirec.model.ensemble import KEY, Ensemble, build, combine
from minirec.model.two_tower import TwoTower, TwoTowerConfig, item_vectors, user_vectors
from minirec.pipeline.training import member_seeds
from minirec.train.registry import load_dir


def _cfg() -> TwoTowerConfig:
    return TwoTowerConfig(user_ids=[1, 2, 3], item_ids=[10, 11, 12, 13], occupations=["a", "b"], dim=8, id_dim=8,
                          hidden=16)


def _members(n: int) -> list[TwoTower]:
    out = []
    for k in range(n):
        torch.manual_seed(k)
        out.append(TwoTower(_cfg()).eval())
    return out


USERS = pd.DataFrame({"age_bucket": [1, None, 3], "gender": ["M", "F", None], "occupation": ["a", "b", "z"],
                      "u_cnt_7d": [1, 0, 2], "u_cnt_30d": [3, 0, 4], "u_cnt_all": [5, 0, 9], "u_mean_rating_30d": [4, None, 3],
                      "u_genre_share_90d": [[1 / len(GENRES)] * len(GENRES), None, None],
                      "last_items": [[10, 11], None, [13]], "u_cnt_1h": [0, 0, 1], "u_cnt_24h": [1, 0, 1]})
ITEMS = pd.DataFrame({"genres": [["Drama"], ["Comedy", "Drama"], [], None], "year": [1995, 1980, 0, 1999],
                      "i_pop_decayed": [3.0, 0.5, 0.0, 10.0]})


def test_the_dot_product_is_the_members_mean_plus_the_popularity_term():
    members = _members(3)
    single = [user_vectors(m, USERS, [1, 2, 3])[:, :-1] @ item_vectors(m, ITEMS, [10, 11, 12, 13])[:, :-1].T
              for m in members]  # (3, 4) u·v / T per member
    ens = combine(members, pop_weight=2.0)
    assert isinstance(ens, Ensemble) and ens.cfg.extra[KEY] == 3 and ens.cfg.pop_weight == 2.0
    q, v = user_vectors(ens, USERS, [1, 2, 3]), item_vectors(ens, ITEMS, [10, 11, 12, 13])
    assert q.shape == (3, 3 * 8 + 1) and v.shape == (4, 3 * 8 + 1)
    np.testing.assert_allclose(np.linalg.norm(v[:, :-1], axis=1), 1.0, atol=1e-5)  # still unit length
    want = np.mean(single, axis=0) + 2.0 * np.log1p(ITEMS["i_pop_decayed"].to_numpy())[None, :]
    np.testing.assert_allclose(q @ v.T, want, rtol=1e-4, atol=1e-4)


def test_a_saved_ensemble_loads_back_with_the_same_scores(tmp_path):
    ens = combine(_members(2), pop_weight=1.5)
    torch.save(ens.state_dict(), tmp_path / "model.pt")
    (tmp_path / "config.json").write_text(json.dumps(ens.cfg.to_dict()))
    loaded, cfg = load_dir(tmp_path)
    assert isinstance(loaded, Ensemble) and cfg["extra"] == {KEY: 2} and cfg["pop_weight"] == 1.5
    np.testing.assert_allclose(user_vectors(loaded, USERS, [1, 2, 3]), user_vectors(ens, USERS, [1, 2, 3]), atol=1e-6)


def test_one_member_is_a_plain_two_tower_and_seeds_do_not_overlap():
    (m,) = _members(1)
    assert combine([m], pop_weight=0.5) is m and m.cfg.pop_weight == 0.5 and KEY not in m.cfg.extra
    assert isinstance(build(_cfg()), TwoTower)
    assert member_seeds(4, 1) == [4]  # a single model keeps the run's seed: the default pipeline unchanged
    assert member_seeds(0, 3) == [0, 1, 2] and member_seeds(1, 3) == [3, 4, 5]
    with pytest.raises(ValueError):
        Ensemble(_cfg(), [m])
