"""Two-tower retrieval model: user tower, item tower, score = dot product.

    user features (Feast `two_tower_v1`)         item features (Feast `two_tower_items_v1`)
      id, profile, aggregates, last 20 items       id, genres, release year
                  │                                            │
              user tower                                   item tower
                  │ (B, d) L2-normalised                       │ (M, d) L2-normalised
                  └──────────── u · v / temperature ───────────┘
                                     + w · log(1 + recency-decayed popularity)

The popularity score term lives inside the dot product as one extra
dimension, so an inner-product ANN index serves the full score:

    user vector  = [u / temperature, w]            (d + 1,)
    item vector  = [v, log1p(i_pop_decayed)]       (d + 1,)

Training (minirec.train.trainer) uses in-batch sampled softmax with the logQ
correction on u·v/temperature only; w is chosen on the validation split.

Serving needs two pure functions from this file: `user_vectors` (online
feature rows -> (B, d+1)) and `item_vectors` (item feature rows -> (M, d+1)).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from minirec.features.tables import AGE_EDGES, GENRES, LAST_N

# Feature names the towers read (as returned by Feast, full_feature_names=False).
USER_FEATURES = ["age_bucket", "gender", "occupation", "u_cnt_7d", "u_cnt_30d", "u_cnt_all",
                 "u_mean_rating_30d", "u_genre_share_90d", "last_items", "u_cnt_1h", "u_cnt_24h"]
ITEM_FEATURES = ["genres", "year", "i_pop_decayed"]
COUNT_FEATURES = ["u_cnt_7d", "u_cnt_30d", "u_cnt_all", "u_cnt_1h", "u_cnt_24h"]
N_DENSE = len(COUNT_FEATURES) + 1 + len(GENRES)  # log counts, centred mean rating, genre shares
N_AGE = len(AGE_EDGES) + 2  # buckets 0..6 plus "unknown"
YEAR_MIN, N_YEAR = 1920, 10  # decade buckets 1..9 from 1920; 0 = unknown


@dataclass
class TwoTowerConfig:
    user_ids: list[int]  # known user ids; index k+1 in the user embedding, 0 = unknown
    item_ids: list[int]  # catalogue item ids; index k+1 in the item embeddings, 0 = padding
    occupations: list[str]  # occupation vocabulary; index k+1, 0 = unknown
    dim: int = 64  # output embedding size d
    id_dim: int = 64  # id embedding size
    hidden: int = 128
    temperature: float = 0.05
    user_id_dropout: float = 0.2  # share of training rows whose user id is hidden (cold-start robustness)
    pop_weight: float = 0.0  # w of the popularity score term (set after training, on validation)
    user_encoder: str = "mean"  # history encoder: "mean" (pooled ids) or "attention" (minirec.model.sequence)
    seq_layers: int = 1  # causal self-attention blocks (attention encoder)
    seq_heads: int = 2
    item_pop_input: bool = False  # the item tower reads log1p(decayed popularity) as an input feature
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TwoTowerConfig:
        return cls(**dict(d))


# ---------------------------------------------------------------- feature encoding
def _col(rows: pd.DataFrame | Mapping[str, Sequence[Any]], name: str) -> list[Any]:
    return list(rows[name])


def _num(values: list[Any]) -> np.ndarray:
    """Nullable numbers -> float64 with null -> 0."""
    out = pd.to_numeric(pd.Series(values, dtype="object"), errors="coerce").fillna(0.0)
    return out.to_numpy(dtype=np.float64)


def encode_users(rows: pd.DataFrame | Mapping[str, Sequence[Any]], cfg: TwoTowerConfig,
                 user_ids: Sequence[int]) -> dict[str, torch.Tensor]:
    """Feast user feature rows (B rows) -> tower inputs. Missing values become 'unknown'/0."""
    uid_index = {u: k + 1 for k, u in enumerate(cfg.user_ids)}
    item_index = {i: k + 1 for k, i in enumerate(cfg.item_ids)}
    occ_index = {o: k + 1 for k, o in enumerate(cfg.occupations)}
    b = len(user_ids)
    age = _num(_col(rows, "age_bucket"))
    age_known = pd.notna(pd.Series(_col(rows, "age_bucket"), dtype="object")).to_numpy()
    hist = np.zeros((b, LAST_N), dtype=np.int64)  # (B, 20) item index + 1, 0 = padding
    for r, items in enumerate(_col(rows, "last_items")):
        if items is None or (isinstance(items, float) and math.isnan(items)):
            continue
        idx = [item_index.get(int(i), 0) for i in list(items)[:LAST_N]]
        hist[r, :len(idx)] = idx
    counts = np.log1p(np.stack([_num(_col(rows, c)) for c in COUNT_FEATURES], axis=1))  # (B, 5)
    mean_rating = _num(_col(rows, "u_mean_rating_30d"))
    centred = np.where(mean_rating > 0, (mean_rating - 3.0) / 2.0, 0.0)[:, None]  # (B, 1)
    share = np.zeros((b, len(GENRES)), dtype=np.float64)  # (B, 19)
    for r, v in enumerate(_col(rows, "u_genre_share_90d")):
        if v is not None and not (isinstance(v, float) and math.isnan(v)) and len(v) == len(GENRES):
            share[r] = np.asarray(v, dtype=np.float64)
    return {
        "uid": torch.as_tensor([uid_index.get(int(u), 0) for u in user_ids], dtype=torch.long),  # (B,)
        "age": torch.as_tensor(np.where(age_known, age, N_AGE - 1).astype(np.int64)),  # (B,)
        "gender": torch.as_tensor([{"M": 1, "F": 2}.get(g, 0) for g in _col(rows, "gender")],
                                  dtype=torch.long),  # (B,)
        "occ": torch.as_tensor([occ_index.get(o, 0) for o in _col(rows, "occupation")],
                               dtype=torch.long),  # (B,)
        "hist": torch.as_tensor(hist),  # (B, 20)
        "dense": torch.as_tensor(np.concatenate([counts, centred, share], axis=1), dtype=torch.float32),
    }


def encode_items(rows: pd.DataFrame | Mapping[str, Sequence[Any]], cfg: TwoTowerConfig,
                 item_ids: Sequence[int]) -> dict[str, torch.Tensor]:
    """Feast item feature rows (M rows) -> tower inputs and the popularity term."""
    item_index = {i: k + 1 for k, i in enumerate(cfg.item_ids)}
    genre_index = {g: k for k, g in enumerate(GENRES)}
    m = len(item_ids)
    genres = np.zeros((m, len(GENRES)), dtype=np.float32)  # (M, 19) multi-hot
    for r, tags in enumerate(_col(rows, "genres")):
        for t in (tags if tags is not None and not isinstance(tags, float) else []):
            if t in genre_index:
                genres[r, genre_index[t]] = 1.0
    year = _num(_col(rows, "year"))
    year_b = np.where(year > 0, np.clip((year - YEAR_MIN) // 10 + 1, 1, N_YEAR - 1), 0).astype(np.int64)
    return {
        "iid": torch.as_tensor([item_index.get(int(i), 0) for i in item_ids], dtype=torch.long),  # (M,)
        "genres": torch.as_tensor(genres),  # (M, 19)
        "year": torch.as_tensor(year_b),  # (M,)
        "logpop": torch.as_tensor(np.log1p(np.maximum(_num(_col(rows, "i_pop_decayed")), 0.0)),
                                  dtype=torch.float32),  # (M,) score term
    }


def take(batch: Mapping[str, torch.Tensor], idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """Rows `idx` of every tensor in an encoded batch."""
    return {k: v[idx] for k, v in batch.items()}


# ---------------------------------------------------------------- the model
class TwoTower(nn.Module):
    def __init__(self, cfg: TwoTowerConfig):
        super().__init__()
        self.cfg = cfg
        n_users, n_items = len(cfg.user_ids) + 1, len(cfg.item_ids) + 1
        # user tower
        self.user_id = nn.Embedding(n_users, cfg.id_dim, padding_idx=0)  # (U+1, id_dim)
        self.hist_item = nn.Embedding(n_items, cfg.id_dim, padding_idx=0)  # pooled history items
        self.age = nn.Embedding(N_AGE, 8)
        self.gender = nn.Embedding(3, 4)
        self.occ = nn.Embedding(len(cfg.occupations) + 1, 8)
        if cfg.user_encoder == "attention":
            from minirec.model.sequence import SequenceEncoder

            self.sequence = SequenceEncoder(self.hist_item, LAST_N, cfg.seq_layers, cfg.seq_heads)
        elif cfg.user_encoder != "mean":
            raise ValueError(f"user_encoder must be 'mean' or 'attention', got {cfg.user_encoder!r}")
        user_in = 2 * cfg.id_dim + 8 + 4 + 8 + N_DENSE
        self.user_mlp = nn.Sequential(nn.Linear(user_in, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.dim))
        # item tower
        self.item_id = nn.Embedding(n_items, cfg.id_dim, padding_idx=0)  # (M+1, id_dim)
        self.genre = nn.Linear(len(GENRES), 16, bias=False)
        self.year = nn.Embedding(N_YEAR, 8)
        self.item_mlp = nn.Sequential(nn.Linear(cfg.id_dim + 16 + 8 + int(cfg.item_pop_input), cfg.hidden), nn.GELU(),
                                      nn.Linear(cfg.hidden, cfg.dim))
        for emb in (self.user_id, self.hist_item, self.item_id):
            nn.init.normal_(emb.weight, std=0.05)
            with torch.no_grad():
                emb.weight[0].zero_()

    def user_tower(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Encoded user batch -> (B, d) L2-normalised user embeddings."""
        uid = x["uid"]
        if self.training and self.cfg.user_id_dropout > 0:
            keep = torch.rand(uid.shape) >= self.cfg.user_id_dropout
            uid = uid * keep  # hidden ids look like unknown users (index 0)
        hist = x["hist"]  # (B, 20)
        mask = (hist > 0).float().unsqueeze(-1)  # (B, 20, 1)
        pooled = (self.hist_item(hist) * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, id_dim) mean
        if self.cfg.user_encoder == "attention":
            pooled = pooled + self.sequence(hist)  # + the causal encoder's newest position (order, recency)
        h = torch.cat([self.user_id(uid), pooled, self.age(x["age"]), self.gender(x["gender"]),
                       self.occ(x["occ"]), x["dense"]], dim=-1)  # (B, user_in)
        return F.normalize(self.user_mlp(h), dim=-1)  # (B, d)

    def item_tower(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Encoded item batch -> (M, d) L2-normalised item embeddings."""
        parts = [self.item_id(x["iid"]), self.genre(x["genres"]), self.year(x["year"])]
        if self.cfg.item_pop_input:
            parts.append(x["logpop"].unsqueeze(-1))  # (M, 1) as of the features' time
        h = torch.cat(parts, dim=-1)
        return F.normalize(self.item_mlp(h), dim=-1)  # (M, d)

    def forward(self, users: Mapping[str, torch.Tensor], items: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, M) logits u·v / temperature (no popularity term: that is added at retrieval)."""
        return self.user_tower(users) @ self.item_tower(items).T / self.cfg.temperature


# ---------------------------------------------------------------- serving functions (pure)
@torch.no_grad()
def user_vectors(model: TwoTower, rows: pd.DataFrame | Mapping[str, Sequence[Any]],
                 user_ids: Sequence[int]) -> np.ndarray:
    """Online (or offline) user feature rows -> (B, d+1) float32 query vectors [u / T, w]."""
    model.eval()
    u = model.user_tower(encode_users(rows, model.cfg, user_ids)) / model.cfg.temperature  # (B, d)
    w = torch.full((u.shape[0], 1), float(model.cfg.pop_weight))
    return torch.cat([u, w], dim=1).numpy().astype(np.float32)


def user_vector(model: TwoTower, features: Mapping[str, Any], user_id: int) -> np.ndarray:
    """One user's feature dict (Feast online read of `two_tower_v1`) -> (d+1,) query vector."""
    rows = {name: [features.get(name)] for name in USER_FEATURES}
    return user_vectors(model, rows, [user_id])[0]


@torch.no_grad()
def item_vectors(model: TwoTower, rows: pd.DataFrame | Mapping[str, Sequence[Any]],
                 item_ids: Sequence[int]) -> np.ndarray:
    """Item feature rows -> (M, d+1) float32 index vectors [v, log1p(popularity)]."""
    model.eval()
    x = encode_items(rows, model.cfg, item_ids)
    v = model.item_tower(x)  # (M, d)
    return torch.cat([v, x["logpop"].unsqueeze(1)], dim=1).numpy().astype(np.float32)


def scores(user_vecs: np.ndarray, item_vecs: np.ndarray) -> np.ndarray:
    """(B, d+1) x (M, d+1) -> (B, M) retrieval scores (what the ANN index ranks by)."""
    return user_vecs @ item_vecs.T
