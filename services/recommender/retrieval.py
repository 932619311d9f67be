"""One loaded model version: user tower + FAISS index + the lists it serves.

    rows (B feature dicts) --user_vectors--> q (B, d+1) --index.search--> (B, K') rows
        --item_ids--> ids, -1 padding kept as -1 --filter--> top-k per user

FAISS pads with -1 when fewer than K' neighbours exist (a small catalogue,
or HNSW not reaching K'); `top_k` drops -1, seen items and duplicates, so a
`k` larger than what is left returns what is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class ModelVersion:
    tag: str
    model: Any  # minirec.model.two_tower.TwoTower (eval mode)
    index: Any  # faiss index over item_vectors (inner product)
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

    def user_vectors(self, rows: list[dict[str, Any]], user_ids: list[int]) -> np.ndarray:
        """(B,) feature dicts -> (B, d+1) float32 query vectors."""
        from minirec.model.two_tower import USER_FEATURES, user_vectors

        cols = {name: [r.get(name) for r in rows] for name in USER_FEATURES}
        return user_vectors(self.model, cols, user_ids)

    def search(self, q: np.ndarray, k_prime: int) -> tuple[np.ndarray, np.ndarray]:
        """(B, d+1) -> scores (B, K'), item ids (B, K') with -1 where FAISS had no neighbour."""
        k_prime = max(1, min(int(k_prime), self.n_items))
        hnsw = getattr(self.index, "hnsw", None)
        if hnsw is not None and hnsw.efSearch < k_prime:
            hnsw.efSearch = k_prime  # HNSW returns at most efSearch results
        scores, rows = self.index.search(np.ascontiguousarray(q, dtype=np.float32), k_prime)
        ids = np.where(rows >= 0, self.item_ids[np.clip(rows, 0, None)], -1)
        return scores, ids

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


def top_k(ids: np.ndarray, scores: np.ndarray, k: int, exclude: set[int]) -> list[tuple[int, float]]:
    """First k of one ranked row, skipping -1 padding, excluded ids and duplicates."""
    out: list[tuple[int, float]] = []
    taken: set[int] = set()
    for i, s in zip(ids.tolist(), scores.tolist()):
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
    return dict(zip(df["item_id"].astype(int), df["title"].astype(str)))


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
    return ModelVersion(tag=b.tag, model=b.model, index=b.index, item_ids=b.item_ids.astype(np.int64),
                        item_norm=emb, row_of={int(i): r for r, i in enumerate(b.item_ids)},
                        popular=popular, titles=titles)
