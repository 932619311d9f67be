"""CTR by served model (services/simulator/paired.py): the statistics, and paired runs against a real
recommender serving two registered models (production = control, candidate = treatment)."""

from __future__ import annotations

import numpy as np
import pytest

from services.simulator.clicks import ClickModel
from services.simulator.client import Recommender
from services.simulator.paired import ctr_se, diff_se, play_paired, summarize
from services.simulator.simulate import build_plan
from tests.serving.conftest import (
    permuted_bundle,
    register_model,
    serve,
    service_env,
    world_bundle_dir,
)


def test_ratio_standard_errors():
    c, n = np.array([1.0, 0.0, 3.0, 2.0]), np.array([10.0, 10.0, 10.0, 10.0])
    r, se = ctr_se(c, n)
    assert r == pytest.approx(0.15)
    # equal list lengths: the SE is that of the per-session CTR mean, with divisor S (not S - 1)
    assert se == pytest.approx(np.sqrt(((c / 10 - 0.15) ** 2).sum()) / 4)
    assert diff_se(c, n, c, n) == (0.0, 0.0)
    d, dse = diff_se(c, n, c - 1 + (c == 0), n)  # one click fewer wherever there was one
    assert d == pytest.approx(0.075) and 0 < dse < se


@pytest.fixture
def two_models(world, kafka_broker, tmp_path):
    """A recommender over a private store: control = the world's model, treatment = its shuffled copy."""
    store = tmp_path / "store"
    good = register_model(store, world_bundle_dir(world), "good", stage="production")
    permuted_bundle(world, tmp_path / "bad_bundle")
    bad = register_model(store, tmp_path / "bad_bundle", "bad")
    rec = serve(tmp_path / "rec", service_env(world, kafka_bootstrap=kafka_broker.bootstrap,
                                              topic="paired-impressions", model_store=store))
    yield rec, good, bad
    rec.stop()


@pytest.mark.slow
def test_paired_ctr_puts_the_model_above_its_shuffled_copy(world, two_models):
    rec, good, bad = two_models
    _, plan = build_plan(world.data_dir, max_sessions=400)
    client = Recommender(rec.url, timeout_s=30)
    try:
        # the world's seen-sets hold its whole log (held-out period included), so no exclusion here
        out = summarize(play_paired(plan, client, ClickModel(noise=0.0), seed=3, concurrency=4, exclude_seen=False))
        same = summarize(play_paired(plan, client, ClickModel(noise=0.0), seed=3, concurrency=4, exclude_seen=False,
                                     arms=("control", "control")))
    finally:
        client.close()
    assert out["sessions"] == len(plan) and out["errors"] == {}, out
    assert out["control"]["clicks"] > 0 and out["control"]["expected_ctr"] > 0, out
    assert [m.split("@")[0] for m in out["control"]["models"]] == [good]
    assert [m.split("@")[0] for m in out["treatment"]["models"]] == [bad]
    assert out["identical_lists"] < len(plan) // 10
    assert out["expected_difference"]["z"] > 3, out  # the real model beats its shuffled item map
    assert out["difference"]["ctr"] > 0, out
    # common random numbers: the same list in both arms gets the same clicks, so the difference is exactly 0
    assert same["identical_lists"] == same["sessions"] == len(plan)
    assert same["difference"] == {"of": "control - control#2", "ctr": 0.0, "se": 0.0, "z": 0.0}
    assert same["control"]["clicks"] == out["control"]["clicks"]  # the dice do not depend on the other arm
