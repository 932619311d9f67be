"""The training curve: the epoch arithmetic, the budget crossing, and tiny real sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from minirec.scale.training import crossing, epoch_row, run_size, tower_inputs


def test_epoch_row_is_batches_times_seconds_per_batch():
    r = epoch_row(100_001, 5_000, 2_000, 0.05, 512)
    assert r["batches_per_epoch"] == 196 == math.ceil(100_001 / 512)
    assert r["epoch_s"] == pytest.approx(196 * 0.05)


@pytest.mark.parametrize("b", [1.0, 1.5])
def test_crossing_solves_the_power_law(b):
    """epoch_s = c N^b exactly -> the fit recovers b and the N with epoch_s = 3600 s."""
    c = 3600 / (2e7) ** b  # the budget is reached at 20M interactions
    rows = [{"interactions": n, "epoch_s": c * n ** b} for n in (1e5, 1e6, 1e7)]
    out = crossing(rows)
    assert out["exponent"] == pytest.approx(b, abs=1e-3)
    assert out["interactions_at_budget"] == pytest.approx(2e7, rel=1e-6)
    assert out["extrapolated"] is True
    inside = crossing([{"interactions": n, "epoch_s": n / 1000} for n in (1e6, 1e7)])  # 1 h at 3.6M
    assert inside["interactions_at_budget"] == pytest.approx(3.6e6, rel=1e-6) and inside["extrapolated"] is False


def test_crossing_needs_two_sizes():
    with pytest.raises(ValueError):
        crossing([{"interactions": 10, "epoch_s": 1.0}])


@pytest.mark.slow
def test_tower_inputs_history_is_the_previous_items_newest_first(tmp_path):
    from minirec.data.synthetic import SyntheticConfig, generate

    generate(SyntheticConfig(n_users=60, n_items=300, seed=5), tmp_path)
    users_x, targets, items_x, freq, vocab = tower_inputs(tmp_path)
    uid, hist, t = users_x["uid"].numpy(), users_x["hist"].numpy(), targets.numpy()
    assert len(t) == len(uid) == len(hist) and freq.sum() == len(t) and len(vocab["user_ids"]) == 60
    firsts = np.r_[True, uid[1:] != uid[:-1]]
    assert (hist[firsts] == 0).all()  # a user's first label has no history
    k = np.flatnonzero(~firsts)[:50]
    assert (hist[k, 0] == t[k - 1] + 1).all()  # newest previous item first (index + 1; 0 = padding)


@pytest.mark.slow
def test_run_size_batches_grow_with_interactions(tmp_path):
    small = run_size(3_000, tmp_path, n_batches=2, threads=1)
    big = run_size(9_000, tmp_path, n_batches=2, threads=1)
    assert small["batches_per_epoch"] < big["batches_per_epoch"]
    assert big["batches_per_epoch"] == math.ceil(big["interactions"] / 512)
    assert big["users"] > small["users"] and big["params"] > small["params"]  # the embedding tables grow
    assert 0 < small["s_per_batch"] and small["epoch_s"] == pytest.approx(
        small["batches_per_epoch"] * small["s_per_batch"], rel=1e-3, abs=0.05)
