"""Baselines, scored with the same protocol as the two-tower.

Each `fit_*` takes the interactions before the evaluation cut and returns a
function user_ids (U,) -> scores (U, M). Hyperparameters are chosen on the
validation split only (see minirec.pipeline).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from minirec.train.evaluate import Catalogue

Scorer = Callable[[np.ndarray], np.ndarray]


def _counts(history: pd.DataFrame, cat: Catalogue) -> np.ndarray:
    return np.bincount(cat.item_index(history["item_id"].values), minlength=cat.n_items).astype(np.float64)


def fit_most_popular(history: pd.DataFrame, cat: Catalogue) -> Scorer:
    """All-time popularity: number of interactions per item before the cut."""
    pop = _counts(history, cat)  # (M,)
    return lambda users: np.broadcast_to(pop, (len(users), cat.n_items))


def fit_recent_popular(history: pd.DataFrame, cat: Catalogue, cut: pd.Timestamp, days: int = 14) -> Scorer:
    """Popularity over the last `days` days before the cut; all-time counts break ties."""
    recent = history[history["event_timestamp"] >= cut - pd.Timedelta(days=days)]
    pop = _counts(recent, cat) + 1e-6 * _counts(history, cat) / max(len(history), 1)
    return lambda users: np.broadcast_to(pop, (len(users), cat.n_items))


def _user_item_matrix(history: pd.DataFrame, cat: Catalogue) -> np.ndarray:
    x = np.zeros((cat.n_users, cat.n_items), dtype=np.float32)
    x[cat.user_index(history["user_id"].values), cat.item_index(history["item_id"].values)] = 1.0
    return x


def fit_item_knn(history: pd.DataFrame, cat: Catalogue, neighbours: int = 100) -> Scorer:
    """Item-based kNN: score(u, j) = sum over u's items i of cos(i, j), keeping each
    item's `neighbours` most similar items."""
    x = _user_item_matrix(history, cat)  # (U, M)
    norms = np.sqrt(x.sum(axis=0)) + 1e-9  # (M,)
    sim = (x.T @ x) / norms[:, None] / norms[None, :]  # (M, M) cosine
    np.fill_diagonal(sim, 0.0)
    if neighbours < cat.n_items:
        thresh = -np.partition(-sim, neighbours - 1, axis=1)[:, neighbours - 1:neighbours]  # (M, 1)
        sim = np.where(sim >= thresh, sim, 0.0)
    pop = _counts(history, cat)

    def score(users: np.ndarray) -> np.ndarray:
        h = x[cat.user_index(users)]  # (U, M)
        return h @ sim + 1e-6 * pop / (pop.max() + 1)  # popularity breaks ties for cold users

    return score


def fit_als_mf(history: pd.DataFrame, cat: Catalogue, factors: int = 64, alpha: float = 10.0,
               reg: float = 0.1, iterations: int = 8, seed: int = 0) -> Scorer:
    """Implicit-feedback matrix factorisation by alternating least squares (Hu, Koren, Volinsky 2008).

    Preference p_ui = 1 if u interacted with i, confidence c_ui = 1 + alpha * p_ui. Each half-step
    solves, per user u, (YᵀY + alpha · Y_uᵀY_u + reg·I) x_u = (1 + alpha) · Σ_{i∈u} y_i, and the
    same for items. Deterministic given the seed; a few seconds on MovieLens-100K."""
    rng = np.random.default_rng(seed)
    u = cat.user_index(history["user_id"].values)
    i = cat.item_index(history["item_id"].values)
    by_user = pd.Series(i).groupby(u).unique()  # user -> its items
    by_item = pd.Series(u).groupby(i).unique()  # item -> its users
    X = rng.normal(0, 0.01, (cat.n_users, factors))  # (U, f) user factors
    Y = rng.normal(0, 0.01, (cat.n_items, factors))  # (M, f) item factors
    eye = reg * np.eye(factors)

    def half_step(fixed: np.ndarray, groups: pd.Series, out: np.ndarray) -> None:
        gram = fixed.T @ fixed + eye  # (f, f)
        out[:] = 0.0
        for row, cols in groups.items():
            F_r = fixed[cols]  # (n_r, f)
            out[row] = np.linalg.solve(gram + alpha * F_r.T @ F_r, (1.0 + alpha) * F_r.sum(axis=0))

    for _ in range(iterations):
        half_step(Y, by_user, X)
        half_step(X, by_item, Y)

    def score(users: np.ndarray) -> np.ndarray:
        return X[cat.user_index(users)] @ Y.T

    return score
