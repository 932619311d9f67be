"""The sequence encoder of the user tower and the recency-weighted loss (unit level)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from minirec.model.sequence import SequenceEncoder
from minirec.train.trainer import in_batch_loss, recency_weights


def _encoder(layers: int = 2) -> SequenceEncoder:
    torch.manual_seed(0)
    emb = torch.nn.Embedding(50, 16, padding_idx=0)
    return SequenceEncoder(emb, max_len=20, layers=layers, heads=2).eval()


def test_empty_history_encodes_to_zeros_and_others_do_not():
    enc = _encoder()
    hist = torch.zeros((3, 20), dtype=torch.long)
    hist[1, :4] = torch.tensor([5, 9, 3, 7])
    out = enc(hist)
    assert out.shape == (3, 16) and torch.isfinite(out).all()
    assert torch.equal(out[0], torch.zeros(16)) and torch.equal(out[2], torch.zeros(16))
    assert out[1].abs().sum() > 0


def test_padding_length_does_not_change_the_encoding():
    enc = _encoder()
    items = torch.tensor([5, 9, 3, 7, 11])
    a = torch.zeros((1, 20), dtype=torch.long)
    a[0, :5] = items
    b = torch.zeros((1, 12), dtype=torch.long)  # a shorter padded window, the same items
    b[0, :5] = items
    torch.testing.assert_close(enc(a), enc(b), rtol=0, atol=1e-6)


def test_the_encoding_depends_on_order_and_gradients_are_finite():
    enc = _encoder().train()
    hist = torch.tensor([[5, 9, 3, 7, 0, 0] + [0] * 14, [7, 3, 9, 5, 0, 0] + [0] * 14, [0] * 20])
    enc.eval()
    out = enc(hist)
    assert (out[0] - out[1]).abs().max() > 1e-4
    enc.train()
    enc(hist).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)


def test_recency_weights_halve_per_half_life_and_average_one():
    t = pd.to_datetime(["2020-01-31", "2020-01-01", "2020-01-16", "2020-01-31"], utc=True).values
    w = recency_weights(t, half_life_days=15.0).numpy()
    assert abs(w.mean() - 1.0) < 1e-6
    assert np.isclose(w[2] / w[0], 0.5) and np.isclose(w[1] / w[0], 0.25) and w[0] == w[3]
    assert recency_weights(t, None) is None


def test_weighted_loss_is_the_weighted_mean_of_row_losses():
    torch.manual_seed(1)
    u = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    v = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    t = torch.tensor([0, 1, 2, 3])
    ones = in_batch_loss(u, v, t, None, 0.1, weights=torch.ones(4))
    assert torch.isclose(ones, in_batch_loss(u, v, t, None, 0.1))
    only_first = in_batch_loss(u, v, t, None, 0.1, weights=torch.tensor([1.0, 0, 0, 0]))
    row0 = torch.nn.functional.cross_entropy((u @ v.T / 0.1)[:1], t[:1])
    assert torch.isclose(only_first, row0)
