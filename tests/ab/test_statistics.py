"""The readout's statistics, proven by simulating experiments whose truth is known (minirec.ab.validate).

Each study has its negative control: the naive variance that inflates the A/A rate, the naive
peeking that inflates it more, a real lift that the sequential test must still find."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from minirec.ab import stats, validate


def test_aa_false_positive_rate_is_alpha():
    r = validate.aa_study()
    assert 0.035 <= r["aa_fpr"] <= 0.065, r
    assert 0.035 <= r["aa_fpr_welch_clicks_per_user"] <= 0.065, r
    # treating each impression as independent gives too small a variance: far too many "wins"
    assert r["aa_fpr_naive_variance"] > 0.075, r


def test_peeking_inflates_the_naive_test_but_not_the_sequential_one():
    r = validate.peeking_study()
    assert 0.035 <= r["fixed_horizon_rate_at_last_look"] <= 0.065, r  # one look: fine
    assert r["peeking_fpr_naive"] > 0.15, r  # 20 looks, stop at the first p < 0.05: well above alpha
    assert r["peeking_fpr_sequential"] <= 0.05, r
    assert r["confidence_sequence_miss_rate"] <= 0.05, r


def test_the_sequential_test_still_finds_a_real_lift():
    r = validate.peeking_study(lift=0.15, seed=8)
    assert r["peeking_power_sequential"] > 0.5, r  # a test that never rejects would pass the A/A check
    assert r["peeking_power_sequential"] < r["peeking_power_naive"], r  # validity has a price in power


def test_power_is_what_the_calculator_predicts():
    z = validate.power_study()
    assert abs(z["power_predicted"] - 0.8) < 0.01, z
    assert abs(z["power_observed"] - z["power_predicted"]) <= 0.03, z
    w = validate.welch_power_study()
    assert abs(w["power_observed"] - w["power_predicted"]) <= 0.03, w


def test_cuped_cuts_the_variance_by_one_minus_rho_squared():
    r = validate.cuped_study()
    assert abs(r["observed_ratio"] - r["predicted_ratio"]) <= 0.05, r
    # unbiased: the adjusted estimates centre on the true lift (SE of the mean over 1,000 runs ~ 0.0014)
    assert abs(r["mean_cuped"] - r["true_lift"]) < 0.005, r
    weak = validate.cuped_study(rho=0.2, n_exp=300)
    assert abs(weak["observed_ratio"] - 0.96) <= 0.06, weak  # little correlation, little gain


def test_delta_method_matches_the_bootstrap_and_naive_is_too_small():
    r = validate.delta_study()
    assert abs(r["var_delta"] / r["var_bootstrap"] - 1) < 0.10, r
    assert r["var_naive"] / r["var_delta"] < 0.8, r


def test_srm_flags_an_injected_split_and_not_a_fair_one():
    r = validate.srm_study()
    assert r["injected_blocked"] and r["injected_p"] < 0.001, r
    assert r["true_5050_block_rate"] <= 0.005, r


# ------------------------------------------------------------------ the primitives themselves
def test_welch_and_z_are_the_libraries_answers():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 1.0, 500), rng.normal(1.2, 2.0, 800)
    e = stats.welch(a, b)
    assert e.p == pytest.approx(sps.ttest_ind(b, a, equal_var=False).pvalue)
    assert e.diff == pytest.approx(b.mean() - a.mean()) and e.ci[0] < e.diff < e.ci[1]
    from statsmodels.stats.proportion import proportions_ztest

    z = stats.two_proportion(120, 1000, 150, 1000)
    assert z.p == pytest.approx(proportions_ztest([150, 120], [1000, 1000])[1])
    assert z.control == 0.12 and z.treatment == 0.15 and z.ci[0] < 0.03 < z.ci[1]


def test_ratio_effect_and_cuped_effect_shapes():
    rng = np.random.default_rng(1)
    c, t = validate.users(rng, (3000,)), validate.users(rng, (3000,), lift=0.3)
    e = stats.ratio_effect(c["clicks"], c["impressions"], t["clicks"], t["impressions"])
    assert e.method == "delta_method_z" and e.diff > 0 and e.p < 0.05 and e.ci[0] > 0
    ce, info = stats.cuped_effect(c["clicks"], c["pre"], t["clicks"], t["pre"])
    raw = stats.welch(c["clicks"], t["clicks"])
    assert ce.se < raw.se and 0 < info.variance_ratio < 1
    assert info.variance_ratio == pytest.approx(1 - info.rho**2, abs=1e-9)


def test_calculator_round_trips():
    n = stats.sample_size(0.1, 1.0, 0.8)
    assert stats.power(0.1, 1.0, n) == pytest.approx(0.8, abs=1e-6)
    assert stats.mde(1.0, n, 0.8) == pytest.approx(0.1, rel=1e-4)
    assert 1560 < n < 1580  # 2 (z_0.975 + z_0.8)^2 / 0.1^2 = 1569.8
    m = stats.proportion_sample_size(0.10, 0.12)
    assert stats.proportion_power(0.10, 0.12, m) == pytest.approx(0.8, abs=1e-6)
