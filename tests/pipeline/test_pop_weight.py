"""How the train step sets the popularity weight w: the smoothed or bagged validation argmax, or a fixed grid value."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from minirec import pipeline as P
from minirec.pipeline.pop_weight import POP_WEIGHTS, bagged_index, choose, smooth
from tests.pipeline.conftest import offline_ctx


def test_smoothing_prefers_a_broad_peak_to_a_lone_spike():
    curve = np.full(len(POP_WEIGHTS), 0.30)
    curve[3:7] = [0.36, 0.37, 0.37, 0.36]  # broad peak around w = 1.0-1.25
    curve[-1] = 0.375  # one higher point at w = 6, its neighbour low
    assert np.argmax(curve) == len(POP_WEIGHTS) - 1  # the raw argmax takes the spike
    assert POP_WEIGHTS[int(np.argmax(smooth(curve)))] in (1.0, 1.25)


def _two_bump_users(n_low: int, n_high: int, rng, noise: float = 0.02) -> np.ndarray:
    """(U, W) per-user curves: n_low users peak at w = 1.0, n_high at w = 5.0, plus noise."""
    w = np.asarray(POP_WEIGHTS)
    low = 0.3 + 0.1 * np.exp(-((w - 1.0) ** 2))  # narrow bumps: their mean has two peaks and a dip at 3
    high = 0.3 + 0.1 * np.exp(-((w - 5.0) ** 2))
    return np.vstack([np.tile(low, (n_low, 1)), np.tile(high, (n_high, 1))]) + rng.normal(0, noise, (n_low + n_high, len(w)))


def test_bagging_averages_two_bumps_that_the_argmax_jumps_between():
    rng = np.random.default_rng(1)
    per_user = _two_bump_users(100, 100, rng)  # two equal groups: two equal peaks of the mean curve
    k_smooth, k_bag = int(np.argmax(smooth(per_user.mean(axis=0)))), bagged_index(per_user)
    assert POP_WEIGHTS[k_smooth] in (0.75, 1.0, 1.25, 4.75, 5.0, 5.25)  # the argmax takes one bump
    assert 1.5 <= POP_WEIGHTS[k_bag] <= 4.5  # the average of picks on both bumps: between them (the caveat)
    assert bagged_index(per_user) == k_bag  # one fixed resampling seed: the same curve gives the same w


def test_bagging_agrees_with_the_argmax_on_a_clear_peak():
    per_user = _two_bump_users(180, 0, np.random.default_rng(2), noise=0.002)
    k, by_rule = choose(per_user, "bagged")
    assert POP_WEIGHTS[k] == by_rule["bagged"] == by_rule["smooth"] == 1.0


def test_choose_names_a_bad_rule_and_a_fixed_w_wins():
    per_user = _two_bump_users(50, 0, np.random.default_rng(3))
    with pytest.raises(P.PipelineError, match=r"pop_weight_rule = 'median'.*smooth.*bagged"):
        choose(per_user, "median")
    k, by_rule = choose(per_user, "smooth", fixed=2.5)
    assert POP_WEIGHTS[k] == 2.5 and by_rule["smooth"] == 1.0  # the rules' choices are still reported


@pytest.fixture(scope="module")
def frames_ctx(tmp_path_factory, synthetic_lake):
    ctx = offline_ctx(tmp_path_factory.mktemp("popw"), synthetic_lake, "pw", "tpw")
    P.run(ctx, ["validate_data", "build_training_set"])
    return ctx


def test_a_fixed_w_is_served_as_given(frames_ctx):
    ctx = dataclasses.replace(frames_ctx, train=dataclasses.replace(frames_ctx.train, pop_weight=4.5))
    out = P.run_step("train", ctx)
    assert out["pop_weight"] == 4.5
    choice = out["pop_weight_choice"]  # the validation curve and each rule's w are recorded anyway
    assert choice["rule"] == "fixed" and set(choice["by_rule"]) == {"smooth", "bagged"}
    assert len(choice["valid_ndcg@10"]) == len(choice["grid"]) == len(POP_WEIGHTS)
    assert json.loads((ctx.run_dir / "train.json").read_text())["pop_weight_choice"] == choice
    for folder in ("model", "model_holdout"):  # the served towers and the holdout ones carry it
        assert json.loads((ctx.run_dir / folder / "config.json").read_text())["pop_weight"] == 4.5


def test_a_w_off_the_grid_is_refused_naming_the_grid(frames_ctx):
    ctx = dataclasses.replace(frames_ctx, train=dataclasses.replace(frames_ctx.train, pop_weight=1.3))
    with pytest.raises(P.PipelineError, match=r"pop_weight = 1.3 is not on the grid"):
        P.run_step("train", ctx)
