"""N two-towers served as one: concatenated embeddings, so the score is still one dot product.

    member k: user u_k (B, d), item v_k (M, d), each L2-normalised
    ensemble: user [u_1, ..., u_N] / sqrt(N)  (B, N*d), item [v_1, ..., v_N] / sqrt(N)  (M, N*d)
              -> both still unit length, and u · v = (1/N) * sum_k u_k · v_k   (the members' mean cosine)

Because the ensemble exposes `cfg`, `user_tower` and `item_tower` like a TwoTower, every pure function
of minirec.model.two_tower (user_vectors, item_vectors: [u / T, w] and [v, log1p(pop)]), the FAISS
index and the recommender serve it unchanged; only the vectors are N times longer (64 -> 192 floats
for N = 3). Members share the vocabularies and temperature (one TwoTowerConfig) and differ by seed.

Why: single seeds of the towers differ by up to 0.016 NDCG@10 on the test split (seeds 0-5 of the
learned-only score: 0.3574-0.3732), as large as the margins the quality targets are about. Averaging
3 members also smooths the validation curve that w is chosen on (on seeds 6-8 one model's w was
6.0 / 0.5 / 2.0, the ensemble's 2.0 / 2.0 / 2.25; over seeds 0-8 it was 0.75-2.25 but for one 5.75). TrainConfig.ensemble = 3 since it was measured on
seeds never run before (minirec/pipeline/README.md, section 7); `--ensemble 1` gives one model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from minirec.model.two_tower import TwoTower, TwoTowerConfig

KEY = "ensemble"  # TwoTowerConfig.extra[KEY] = N members (absent or 1: a plain TwoTower)


class Ensemble(nn.Module):
    def __init__(self, cfg: TwoTowerConfig, members: Sequence[TwoTower]):
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least 2 members")
        self.cfg = cfg  # the shared config; cfg.pop_weight is the ensemble's w, cfg.extra[KEY] = N
        self.members = nn.ModuleList(members)
        self.scale = 1.0 / math.sqrt(len(members))

    def user_tower(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Encoded user batch -> (B, N*d) unit-length concatenation of the members' user embeddings."""
        return torch.cat([m.user_tower(x) for m in self.members], dim=-1) * self.scale

    def item_tower(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Encoded item batch -> (M, N*d) unit-length concatenation of the members' item embeddings."""
        return torch.cat([m.item_tower(x) for m in self.members], dim=-1) * self.scale

    def forward(self, users: Mapping[str, torch.Tensor], items: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, M) logits: the members' mean u·v, over the shared temperature."""
        return self.user_tower(users) @ self.item_tower(items).T / self.cfg.temperature


def combine(members: Sequence[TwoTower], pop_weight: float) -> TwoTower | Ensemble:
    """Trained members -> one model with w = pop_weight (a single member is returned as itself)."""
    cfg = TwoTowerConfig.from_dict(members[0].cfg.to_dict())
    cfg.pop_weight = float(pop_weight)
    if len(members) == 1:
        members[0].cfg.pop_weight = cfg.pop_weight
        return members[0]
    cfg.extra = {**cfg.extra, KEY: len(members)}
    for m in members:
        m.cfg = cfg  # one config: the members only read its vocabularies and temperature
    return Ensemble(cfg, members)


def build(cfg: TwoTowerConfig) -> Any:
    """An untrained model of the shape `cfg` describes (load_state_dict fills it): TwoTower or Ensemble."""
    n = int(cfg.extra.get(KEY, 1))
    if n <= 1:
        return TwoTower(cfg)
    return Ensemble(cfg, [TwoTower(cfg) for _ in range(n)])
