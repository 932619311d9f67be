"""One loaded model version: user tower + FAISS index + the lists it serves.

    rows (B feature dicts) --user_vectors--> q (B, d+1) --index.search--> (B, K') rows
        --item_ids--> ids, -1 padding kept as -1 --filter--> top-k per user
        (with a ranker: top-100 per user --rank, one LightGBM call per batch--> top-k)

FAISS pads with -1 when fewer than K' neighbours exist (a small catalogue,
or HNSW not reaching K'); `top_k` drops -1, seen items and duplicates, so a
`k` larger than what is left returns what is left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from minirec.model.user_encoder import FastUserEncoder


@dataclass
class ModelVersion:
    tag: str
    model: Any  # minirec.model.two_tower.TwoTower (eval mode)
    index: Any  # faiss index over item_vectors (minirec.train.ann)
    item_vectors: np.ndarray  # (M, d+1) float32 [v, log1p(popularity)]
    item_ids: np.ndarray  # (M,) int64 row -> item id
    item_norm: np.ndarray  # (M, d) float32 L2-normalised item embeddings (similar items)
    row_of: dict[int, int]  # item id -> row
    popular: list[tuple[int, float]]  # (item id, log1p popularity), most popular first
    titles: dict[int, str]

    @property
    def n_items(self) -> int:
        return int(self.item_ids.shape[0])

    def title(self, item_id: int) -> str:
        return self.titles.get(item_id, f"item {item_id}")

    encoder: FastUserEncoder | None = None
    ranker: Any = None  # minirec.rank.model.Ranker: the ranking stage, None when the bundle has none
    rank_items: Any = None  # minirec.rank.features.ItemTable: its item features at the release cut

    def reordered(self, rows: list[dict[str, Any]]) -> np.ndarray:
        """(B,) feature dicts -> (B,) bool: the ranker reorders this user's list (its segments); all False
        without a ranker. Decided once per batch: `depths` and `rank` both take it."""
        if self.ranker is None:
            return np.zeros(len(rows), dtype=bool)
        return self.ranker.reorders_users(rows)

    def depths(self, reordered: np.ndarray) -> list[int]:
        """(B,) bool from `reordered` -> candidates retrieval hands on per user: the ranker's K (100) for a
        user it reorders, else 0 (the request's k is enough: that list keeps retrieval order)."""
        from minirec.rank.model import K_CANDIDATES

        return [K_CANDIDATES if r else 0 for r in reordered.tolist()]

    def rank(self, rows: list[dict[str, Any]], cands: list[list[tuple[int, float]]],
             keep: np.ndarray) -> list[list[tuple]]:
        """One ranker call for a batch: (B,) feature dicts, (B,) candidate lists (item id, retrieval score)
        in retrieval order, (B,) bool `reordered` -> the same candidates in ranker order as (item id, ranker
        score, retrieval score); a user not kept (outside the ranker's segments) keeps retrieval order and
        gets (item id, retrieval score, retrieval score)."""
        from minirec.rank.features import pair_features
        from minirec.rank.model import rerank_order, retrieval_order_outside

        k = max((len(c) for c in cands), default=0)
        cand = np.full((len(cands), k), -1, dtype=np.int64)
        sc = np.zeros((len(cands), k), dtype=np.float32)
        for b, c in enumerate(cands):
            cand[b, :len(c)] = [self.row_of[i] for i, _ in c]
            sc[b, :len(c)] = [s for _, s in c]
        # features and the booster only for the users the ranker reorders (its segments; the others keep
        # retrieval order): with segments = cold, a warm user's candidates cost nothing here.
        # Rows are independent, so this equals predict_lists over the whole batch (served == offline).
        p = np.zeros(cand.shape, dtype=np.float64)
        if keep.any():
            idx = np.flatnonzero(keep)
            x = pair_features([rows[b] for b in idx], self.rank_items, cand[idx], sc[idx],
                              float(self.model.cfg.pop_weight))  # (|idx|*k, F)
            p[idx] = self.ranker.predict(x).reshape(len(idx), k)
        p = retrieval_order_outside(p, keep)
        order = rerank_order(p, cand)
        # a user the ranker does not reorder (outside its segments) is served, and scored, by retrieval
        shown = np.where(keep[:, None], p, sc)  # (B, k)
        return [[(int(self.item_ids[cand[b, j]]), float(shown[b, j]), float(sc[b, j])) for j in order[b]
                 if cand[b, j] >= 0] for b in range(len(cands))]

    def user_vectors(self, rows: list[dict[str, Any]], user_ids: list[int]) -> np.ndarray:
        """(B,) feature dicts -> (B, d+1) float32 query vectors [u / T, w] (as two_tower.user_vectors)."""
        import torch

        if self.encoder is None:
            self.encoder = FastUserEncoder(self.model.cfg)
        with torch.no_grad():
            u = self.model.user_tower(self.encoder(rows, user_ids)) / self.model.cfg.temperature  # (B, d)
            w = torch.full((u.shape[0], 1), float(self.model.cfg.pop_weight))
            return torch.cat([u, w], dim=1).numpy().astype(np.float32)

    def search(self, q: np.ndarray, k_prime: int) -> tuple[np.ndarray, np.ndarray]:
        """(B, d+1) -> scores (B, K') = q . item_vector, item ids (B, K') with -1 where FAISS had none.

        The bundle's index is HNSW (L2) over MIPS-augmented item vectors (minirec.train.ann: the
        query gets a 0 appended); an index over the raw vectors (inner product) is searched as is.
        The score returned is the model's inner product, recomputed for the K' rows."""
        k_prime = max(1, min(int(k_prime), self.n_items))
        params = self._search_params(k_prime)
        q = np.ascontiguousarray(q, dtype=np.float32)
        if self.index.d == q.shape[1] + 1:
            from minirec.train.ann import search

            rows, _ = search(self.index, q, k_prime, params=params)
        else:
            _, rows = self.index.search(q, k_prime, params=params)
        safe = np.clip(rows, 0, None)
        scores = np.einsum("bd,bkd->bk", q, self.item_vectors[safe])  # (B, K')
        ids = np.where(rows >= 0, self.item_ids[safe], -1)
        order = np.argsort(-scores, axis=1, kind="stable")  # HNSW order is approximate
        return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)

    def _search_params(self, k_prime: int) -> Any:
        """Per-call HNSW depth: efSearch >= K' for this search only (None for a non-HNSW index).

        The index is shared by every request of the worker; raising `index.hnsw.efSearch` for one
        heavy user's deep search would slow every later search, so the depth travels with the call
        (faiss.SearchParametersHNSW) and the index keeps the efSearch it was built with."""
        hnsw = getattr(self.index, "hnsw", None)
        if hnsw is None:
            return None
        import faiss

        return faiss.SearchParametersHNSW(efSearch=max(int(hnsw.efSearch), k_prime))

    def similar(self, item_id: int, k: int) -> list[tuple[int, float]] | None:
        """Cosine neighbours of an item (itself excluded); None for an unknown item."""
        row = self.row_of.get(int(item_id))
        if row is None:
            return None
        sims = self.item_norm @ self.item_norm[row]  # (M,)
        sims[row] = -np.inf
        k = min(k, self.n_items - 1)
        top = np.argpartition(-sims, k - 1)[:k] if k > 0 else np.array([], dtype=np.int64)
        top = top[np.argsort(-sims[top], kind="stable")]
        return [(int(self.item_ids[r]), float(sims[r])) for r in top]


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def row_problem(row: dict[str, Any]) -> str | None:
    """Why this online row cannot be encoded, or None. Checked per user before the batch forward:
    one out-of-range embedding index (age_bucket >= N_AGE, say) would fail the whole batch, and a
    negative count or an infinite share would turn that user's scores into NaN."""
    from minirec.model.two_tower import COUNT_FEATURES, N_AGE

    a = row.get("age_bucket")
    if not _missing(a) and (not _is_number(a) or a != int(a) or not 0 <= a < N_AGE):
        return f"age_bucket={a!r}: not a bucket 0..{N_AGE - 1}"
    for name in COUNT_FEATURES:
        v = row.get(name)
        if not _missing(v) and (not _is_number(v) or not math.isfinite(v) or v < 0):
            return f"{name}={v!r}: not a count"
    v = row.get("u_mean_rating_30d")
    if not _missing(v) and (not _is_number(v) or not math.isfinite(v)):
        return f"u_mean_rating_30d={v!r}: not a number"
    share = row.get("u_genre_share_90d")
    if not _missing(share) and (not isinstance(share, (list, tuple))
                                or not all(_is_number(x) and math.isfinite(x) for x in share)):
        return "u_genre_share_90d: not a list of finite numbers"
    items = row.get("last_items")
    if not _missing(items) and (not isinstance(items, (list, tuple)) or not all(_is_int(i) for i in items)):
        return "last_items: not a list of item ids"
    for name in ("gender", "occupation"):
        if row.get(name) is not None and not isinstance(row.get(name), str):
            return f"{name}={row.get(name)!r}: not a string"
    return None


def top_k(ids: np.ndarray, scores: np.ndarray, k: int, exclude: set[int]) -> list[tuple[int, float]]:
    """First k of one ranked row, skipping -1 padding, excluded ids and duplicates."""
    out: list[tuple[int, float]] = []
    taken: set[int] = set()
    for i, s in zip(ids.tolist(), scores.tolist(), strict=True):
        if i < 0 or i in exclude or i in taken:
            continue
        taken.add(i)
        out.append((i, float(s)))
        if len(out) == k:
            break
    return out


def popular_k(version: ModelVersion, k: int, exclude: set[int] = frozenset()) -> list[tuple[int, float]]:
    out = []
    for i, s in version.popular:
        if i not in exclude:
            out.append((i, s))
            if len(out) == k:
                break
    return out


def load_titles(path: Path) -> dict[int, str]:
    if not path.exists():
        return {}
    import pandas as pd

    df = pd.read_parquet(path, columns=["item_id", "title"])
    return dict(zip(df["item_id"].astype(int), df["title"].astype(str), strict=True))


def load_version(store_path: Path, name: str, tag: str, titles: dict[int, str]) -> ModelVersion:
    """Load a registered bundle (minirec.train.registry layout) for serving."""
    import faiss
    import torch

    from minirec.train.registry import load_bundle

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    b = load_bundle(store_path, name, tag=tag)
    emb = b.item_embeddings.astype(np.float32)
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    order = np.argsort(-b.item_vectors[:, -1], kind="stable")  # last column: log1p(popularity)
    popular = [(int(b.item_ids[r]), float(b.item_vectors[r, -1])) for r in order]
    rank_items = None
    if b.ranker is not None:
        from minirec.rank.features import ItemTable

        rank_items = ItemTable.build(b.ranker_items, b.item_vectors, b.item_ids)
    return ModelVersion(tag=b.tag, model=b.model, index=b.index, item_vectors=b.item_vectors.astype(np.float32),
                        item_ids=b.item_ids.astype(np.int64),
                        item_norm=emb, row_of={int(i): r for r, i in enumerate(b.item_ids)},
                        popular=popular, titles=titles, ranker=b.ranker, rank_items=rank_items)
