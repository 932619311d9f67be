"""Offline ranking on dense score matrices: the candidates the recommender would retrieve, the
ranker's training rows, and the served score matrix that `evaluate_scores` reads.

    scores (U, M) retrieval, seen (U, M) bool --top_candidates--> cand (U, K) rows, s (U, K)
    users frame + ItemTable + cand --pair_features--> X (U*K, F), y (U*K,) 1 = rated in the period
    cand + ranker scores --served_matrix--> (U, M): the K candidates on top in ranker order, the
        rest of the catalogue below them in retrieval order (so Recall@K is the retrieval stage's)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from minirec.rank.features import ItemTable, pair_features
from minirec.rank.model import Ranker, rerank_order

TOP = 1e6  # served score of the ranked candidates: above every retrieval score


def top_candidates(scores: np.ndarray, seen: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(U, M) scores, (U, M) seen -> the k best unseen catalogue rows (U, k) and their scores, best first."""
    s = np.where(seen, -np.inf, scores)
    k = min(k, s.shape[1])
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    ps = np.take_along_axis(s, part, 1)
    order = np.argsort(-ps, axis=1, kind="stable")
    cand = np.take_along_axis(part, order, 1)
    cs = np.take_along_axis(ps, order, 1)
    return np.where(np.isfinite(cs), cand, -1), cs


def frame_rows(frame: pd.DataFrame, user_ids: np.ndarray) -> list[dict]:
    """Feature-frame rows for `user_ids`, in that order, as the dicts the online store would give."""
    return frame.set_index("user_id").loc[np.asarray(user_ids)].reset_index().to_dict("records")


@dataclass
class Candidates:
    user_ids: np.ndarray  # (U,)
    cand: np.ndarray  # (U, K) catalogue rows, retrieval order, -1 = none
    scores: np.ndarray  # (U, K) retrieval scores
    x: np.ndarray  # (U*K, F) ranker features

    def labels(self, relevant: list[set[int]]) -> np.ndarray:
        """(U*K,) 1 where the candidate is among the user's relevant catalogue rows."""
        return np.array([[int(c in rel) for c in row] for row, rel in zip(self.cand.tolist(), relevant,
                                                                           strict=True)],
                        dtype=np.float32).reshape(-1)


def candidates(scores: np.ndarray, seen: np.ndarray, user_ids: np.ndarray, users: pd.DataFrame,
               items: ItemTable, pop_weight: float, k: int) -> Candidates:
    cand, cs = top_candidates(scores, seen, k)
    x = pair_features(frame_rows(users, user_ids), items, cand, cs, pop_weight)
    return Candidates(user_ids=np.asarray(user_ids), cand=cand, scores=cs, x=x)


def served_matrix(scores: np.ndarray, cand: np.ndarray, ranker_scores: np.ndarray) -> np.ndarray:
    """(U, M) retrieval scores -> (U, M) with the candidates lifted above the rest in ranker order."""
    out = scores.astype(np.float64, copy=True)
    order = rerank_order(ranker_scores, cand)
    ranked = np.take_along_axis(cand, order, 1)  # (U, K) rows, ranker order
    u, k = ranked.shape
    val = TOP - np.arange(k, dtype=np.float64)[None, :].repeat(u, 0)
    ok = ranked >= 0
    out[np.nonzero(ok)[0], ranked[ok]] = val[ok]
    return out


def predict_matrix(ranker: Ranker, c: Candidates) -> np.ndarray:
    """(U, K) ranker scores of the candidates."""
    return ranker.predict_lists(c.x, c.cand.shape)
