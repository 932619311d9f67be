"""Evaluation sets and the shared scoring protocol.

Every model (baselines and the two-tower) produces a dense score matrix
(U, M) for the evaluation users over the whole catalogue; the same
`evaluate_scores` masks seen items, ranks and computes the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from minirec.train.metrics import KS, evaluate_rankings, summarize, top_k


@dataclass(frozen=True)
class Catalogue:
    """Dense index spaces: item index m in 0..M-1, user index in 0..U-1 (sorted ids)."""

    item_ids: np.ndarray  # (M,) int64, sorted
    user_ids: np.ndarray  # (U,) int64, sorted

    @classmethod
    def from_tables(cls, items: pd.DataFrame, users: pd.DataFrame, inter: pd.DataFrame) -> Catalogue:
        item_ids = np.union1d(items["item_id"].values, inter["item_id"].values).astype(np.int64)
        user_ids = np.union1d(users["user_id"].values, inter["user_id"].values).astype(np.int64)
        return cls(item_ids=item_ids, user_ids=user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def item_index(self, ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.item_ids, np.asarray(ids, dtype=np.int64))

    def user_index(self, ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.user_ids, np.asarray(ids, dtype=np.int64))


@dataclass(frozen=True)
class EvalSet:
    """Users to rank at one cut time, what they saw before it, what they did after it."""

    cut: pd.Timestamp  # features and history strictly before this time
    user_ids: np.ndarray  # (U_e,) users with >= 1 relevant item in the period
    relevant: list[set[int]]  # item indices per user, unseen before the cut
    seen: np.ndarray  # (U_e, M) bool, interacted before the cut (masked at ranking)

    @property
    def warm(self) -> np.ndarray:
        """(U_e,) bool: the user has history before the cut (cold users have none: only their
        profile and what is popular can be used for them)."""
        return self.seen.any(axis=1)


def make_eval_set(history: pd.DataFrame, period: pd.DataFrame, cut: pd.Timestamp,
                  cat: Catalogue) -> EvalSet:
    """history: interactions before `cut`; period: the interactions to predict."""
    seen_pairs = set(zip(history["user_id"].values.tolist(), history["item_id"].values.tolist(), strict=True))
    rel: dict[int, set[int]] = {}
    for u, i in zip(period["user_id"].values.tolist(), period["item_id"].values.tolist(), strict=True):
        if (u, i) not in seen_pairs:
            rel.setdefault(u, set()).add(int(cat.item_index(np.array([i]))[0]))
    user_ids = np.array(sorted(rel), dtype=np.int64)
    seen = np.zeros((len(user_ids), cat.n_items), dtype=bool)
    pos = {u: k for k, u in enumerate(user_ids.tolist())}
    h = history[history["user_id"].isin(pos)]
    seen[[pos[u] for u in h["user_id"].values.tolist()], cat.item_index(h["item_id"].values)] = True
    return EvalSet(cut=cut, user_ids=user_ids, relevant=[rel[u] for u in user_ids.tolist()], seen=seen)


def evaluate_scores(scores: np.ndarray, ev: EvalSet, n_items: int,
                    ks: tuple[int, ...] = KS) -> tuple[dict[str, float], dict[str, np.ndarray], np.ndarray]:
    """scores (U_e, M) -> (summary, per-user metrics, ranked (U_e, max K)).

    The summary holds the averages over all users plus `warm` and `cold` sub-entries with the
    same keys (users with / without history before the cut)."""
    ranked = top_k(scores, max(ks), exclude=ev.seen)
    summary, per_user = evaluate_rankings(ranked, ev.relevant, n_items, ks)
    warm = ev.warm
    summary["warm"] = summarize(per_user, ranked, n_items, ks, rows=warm)
    summary["cold"] = summarize(per_user, ranked, n_items, ks, rows=~warm)
    return summary, per_user, ranked
