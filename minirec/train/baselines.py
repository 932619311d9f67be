"""Baselines, scored with the same protocol as the two-tower.

Each `fit_*` takes the interactions before the evaluation cut and returns a
function user_ids (U,) -> scores (U, M). Hyperparameters are chosen on the
validation split only (see minirec.pipeline).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

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


def fit_bpr_mf(history: pd.DataFrame, cat: Catalogue, dim: int = 64, epochs: int = 30,
               lr: float = 0.01, reg: float = 1e-4, batch: int = 2048, seed: int = 0) -> Scorer:
    """Matrix factorisation with BPR loss (uniform negative sampling), item bias included."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    u = torch.as_tensor(cat.user_index(history["user_id"].values), dtype=torch.long)  # (N,)
    i = torch.as_tensor(cat.item_index(history["item_id"].values), dtype=torch.long)  # (N,)
    P = torch.nn.Embedding(cat.n_users, dim)  # user factors
    Q = torch.nn.Embedding(cat.n_items, dim)  # item factors
    b = torch.nn.Embedding(cat.n_items, 1)  # item bias
    for e in (P, Q):
        torch.nn.init.normal_(e.weight, std=0.1, generator=g)
    torch.nn.init.zeros_(b.weight)
    params = [*P.parameters(), *Q.parameters(), *b.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    n = len(u)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            uu, ii = u[idx], i[idx]
            jj = torch.randint(0, cat.n_items, (len(idx),), generator=g)  # sampled negatives
            pu = P(uu)
            x = (pu * (Q(ii) - Q(jj))).sum(-1) + (b(ii) - b(jj)).squeeze(-1)  # (B,) score margin
            loss = -torch.nn.functional.logsigmoid(x).mean() \
                + reg * (pu.pow(2).sum() + Q(ii).pow(2).sum() + Q(jj).pow(2).sum()) / len(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        users_f = P.weight.numpy().copy()
        items_f = Q.weight.numpy().copy()
        bias = b.weight.numpy()[:, 0].copy()

    def score(users: np.ndarray) -> np.ndarray:
        return users_f[cat.user_index(users)] @ items_f.T + bias[None, :]

    return score
