"""The click model: position dependence, relevance grading, noise rate, determinism (pure, no servers)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.simulator.clicks import ClickModel, examination, session_rng

N = 20_000  # sessions per estimate: a rate p is measured to about ±3·sqrt(p(1-p)/N) ≈ ±0.01


def click_rates(model: ClickModel, next_items: dict[int, float], k: int = 10, n: int = N, seed: int = 0):
    """Empirical P(click) per position over n sessions of the same list 1..k."""
    items = list(range(1, k + 1))
    hits = np.zeros(k)
    for j in range(n):
        for p in model.click(items, next_items, session_rng(seed, 1, j)):
            hits[p] += 1
    return hits / n


def tol(p: float, n: int = N) -> float:
    return 4 * math.sqrt(p * (1 - p) / n)


def test_examination_is_the_dcg_discount():
    assert examination(0) == 1.0
    assert examination(2) == pytest.approx(0.5)
    assert examination(9) == pytest.approx(1 / math.log2(11))
    with pytest.raises(ValueError):
        examination(-1)


def test_clicks_on_a_next_item_fall_with_position():
    model = ClickModel(max_attract=0.9, noise=0.0)
    rates = click_rates(model, {i: 5.0 for i in range(1, 11)})  # every shown item is a 5-star next item
    for p in range(10):
        expected = 0.9 / math.log2(p + 2)
        assert abs(rates[p] - expected) < tol(expected), (p, rates[p], expected)
    assert rates[0] / rates[9] == pytest.approx(math.log2(11), rel=0.08)
    assert all(rates[p] > rates[p + 3] for p in range(7))  # monotone beyond sampling noise


def test_relevance_grows_with_the_held_out_rating():
    model = ClickModel(max_attract=0.9, noise=0.0)
    assert model.attractiveness(5) == pytest.approx(0.9)
    assert model.attractiveness(4) == pytest.approx(0.9 * 15 / 31)
    assert model.attractiveness(1) == pytest.approx(0.9 / 31)
    rates = click_rates(model, {1: 5.0, 2: 3.0})  # item 1 at position 0, item 2 at position 1
    assert abs(rates[0] - 0.9) < tol(0.9)
    assert abs(rates[1] - 0.9 * 7 / 31 / math.log2(3)) < tol(0.2)
    assert rates[2:].sum() == 0  # no noise: unrated items are never clicked


def test_noise_rate_elsewhere():
    model = ClickModel(noise=0.05)
    rates = click_rates(model, {})  # nothing shown was rated
    for p in range(10):
        expected = 0.05 * examination(p)
        assert abs(rates[p] - expected) < tol(expected), (p, rates[p], expected)
    assert click_rates(ClickModel(noise=0.0), {}, n=2000).sum() == 0


def test_floor_raises_attractiveness_but_keeps_examination():
    model = ClickModel(noise=0.0)
    items = list(range(1, 11))
    hits = np.zeros(10)
    for j in range(N):
        for p in model.click(items, {}, session_rng(0, 1, j), attract_floor={4: 0.6}):
            hits[p] += 1
    rates = hits / N
    assert abs(rates[3] - 0.6 * examination(3)) < tol(0.26)
    assert rates.sum() == rates[3]  # without the floor (noise 0) no position is ever clicked


def test_same_seed_same_clicks_other_seed_other_clicks():
    model = ClickModel(noise=0.1)
    items = list(range(1, 21))
    nxt = {3: 5.0, 7: 4.0, 12: 3.0}

    def run(seed):
        return [model.click(items, nxt, session_rng(seed, u, j)) for u in range(1, 30) for j in range(5)]

    a, b, c = run(42), run(42), run(43)
    assert a == b
    assert a != c
    assert sum(map(len, a)) > 0
    # a session's draws do not depend on the other sessions (order-free): replay one alone
    assert model.click(items, nxt, session_rng(42, 10, 3)) == a[(10 - 1) * 5 + 3]


@pytest.mark.parametrize("kw", [{"noise": -0.1}, {"noise": 1.5}, {"max_attract": 2.0}, {"r_max": 0}])
def test_bad_parameters_are_refused(kw):
    with pytest.raises(ValueError):
        ClickModel(**kw)
