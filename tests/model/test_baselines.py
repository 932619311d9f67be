"""The batched ALS baseline solves the same normal equations as a per-row loop would."""

from __future__ import annotations

import numpy as np
import pandas as pd

from minirec.train.baselines import fit_als_mf
from minirec.train.evaluate import Catalogue


def _reference_als(r: np.ndarray, factors: int, alpha: float, reg: float, iterations: int, seed: int) -> np.ndarray:
    """Hu-Koren-Volinsky ALS written row by row: r (U, M) 0/1 -> scores (U, M)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.01, (r.shape[0], factors))
    y = rng.normal(0, 0.01, (r.shape[1], factors))
    for _ in range(iterations):
        for fixed, rows, out in ((y, r, x), (x, r.T, y)):
            gram = fixed.T @ fixed + reg * np.eye(factors)
            for row in range(rows.shape[0]):
                cols = np.flatnonzero(rows[row])
                f = fixed[cols]
                out[row] = np.linalg.solve(gram + alpha * f.T @ f, (1 + alpha) * f.sum(axis=0)) if len(cols) else 0.0
    return x @ y.T


def test_batched_als_equals_the_row_by_row_solution():
    rng = np.random.default_rng(3)
    users, items = np.arange(1, 31), np.arange(10, 50)
    pairs = [(u, i) for u in users for i in items if rng.random() < 0.15]
    pairs += [pairs[0]]  # a repeated interaction counts once
    history = pd.DataFrame(pairs, columns=["user_id", "item_id"])
    cat = Catalogue(item_ids=np.append(items, 99), user_ids=np.append(users, 77))  # item 99, user 77: no history
    scores = fit_als_mf(history, cat, factors=8, alpha=5.0, reg=0.1, iterations=3, seed=1)(cat.user_ids)
    r = np.zeros((cat.n_users, cat.n_items))
    r[cat.user_index(history["user_id"].values), cat.item_index(history["item_id"].values)] = 1.0
    expected = _reference_als(r, factors=8, alpha=5.0, reg=0.1, iterations=3, seed=1)
    np.testing.assert_allclose(scores, expected, rtol=1e-8, atol=1e-12)
    assert np.all(scores[-1] == 0) and np.all(scores[:, -1] == 0)  # no history: zero factor
    assert np.abs(scores[:-1, :-1]).max() > 0.1  # and the fitted part is not trivially zero
