"""Sequence encoder of the user tower: the user's recent items, in order, through causal self-attention.

    hist (B, L) item index + 1, newest first, 0 = padding      (the Feast `last_items` feature)
      -> item embedding + recency-position embedding            (B, L, e)
      -> n causal self-attention blocks (pre-norm, GELU MLP)    (B, L, e)
      -> the newest position's output                           (B, e); zeros for an empty history

Order: position p is the p-th most recent item, so "causal" means a token attends to itself and
to older tokens (positions >= p), never to newer ones: the output at position p summarises the
prefix of the sequence that ended with that item, as in SASRec (Kang & McAuley 2018,
https://arxiv.org/abs/1808.09781). Only the newest position's output enters the user vector (the
two-tower adds it to the mean-pooled history when `user_encoder="attention"`).

Training target: every training interaction is one label whose `last_items` was read just before
it (minirec.features.training_set.label_frame), so each event of each user's time-ordered log is a
next-item target with exactly its own causal prefix: the same set of (prefix, next item) pairs as
SASRec's every-position loss, produced by the feature store instead of by shifting a tensor.

Time gaps are not an input: the online feature `last_items` carries no per-item timestamps (the
stream processor pushes ids only); u_cnt_1h / u_cnt_24h in the dense features carry session recency.
"""

from __future__ import annotations

import torch
from torch import nn


class CausalBlock(nn.Module):
    """Pre-norm transformer block over (B, L, e)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, blocked: torch.Tensor, queries: int | None = None) -> torch.Tensor:
        """x (B, L, e); blocked (B * heads, L, L) True = may not attend -> (B, Q, e) for the first
        Q positions (all by default; the last block needs only the newest, a 20x smaller cost)."""
        q = x.shape[1] if queries is None else queries
        h = self.norm1(x)
        a, _ = self.attn(h[:, :q], h, h, attn_mask=blocked[:, :q], need_weights=False)
        x = x[:, :q] + self.drop(a)
        return x + self.drop(self.mlp(self.norm2(x)))


class SequenceEncoder(nn.Module):
    """(B, L) newest-first item indices -> (B, e) summary of the history (zeros when empty)."""

    def __init__(self, item_embedding: nn.Embedding, max_len: int, layers: int = 1, heads: int = 2,
                 dropout: float = 0.1):
        super().__init__()
        dim = item_embedding.embedding_dim
        self.items = item_embedding  # (M+1, e), row 0 = padding
        self.position = nn.Embedding(max_len, dim)  # recency rank 0 = newest
        nn.init.normal_(self.position.weight, std=0.02)
        self.heads = heads
        self.blocks = nn.ModuleList(CausalBlock(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        # causal[p, k] = True: query p may not see key k, a newer item (k < p)
        idx = torch.arange(max_len)
        self.register_buffer("causal", idx[None, :] < idx[:, None], persistent=False)  # (L, L)

    def forward(self, hist: torch.Tensor) -> torch.Tensor:
        n = hist.shape[1]
        pad = hist == 0  # (B, L)
        empty = pad.all(dim=1)  # (B,) no history: the output is zeroed below
        # a query never sees newer or padded keys, but always itself (so no softmax row is empty;
        # padded queries only see themselves and are never read)
        blocked = (self.causal[:n, :n][None] | pad[:, None, :]) & ~torch.eye(n, dtype=torch.bool)[None]
        blocked = blocked.repeat_interleave(self.heads, dim=0)  # (B * heads, L, L)
        x = self.items(hist) + self.position(torch.arange(n))[None]  # (B, L, e)
        for k, block in enumerate(self.blocks):
            x = block(x, blocked, queries=1 if k == len(self.blocks) - 1 else None)
        out = self.norm(x[:, 0])  # (B, e) the newest position
        return out.masked_fill(empty[:, None], 0.0)
