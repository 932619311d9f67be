"""Evidently's argument order: Report.run(current_data, reference_data), current FIRST.

The normed Wasserstein distance divides W1 by the REFERENCE's standard deviation
(Evidently's data drift explainer), so it is asymmetric: with a reference N(0, 1)
and a current N(0, 3) the right order gives W1 / 1 and the swapped order W1 / 3.
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wasserstein_distance

from monitoring.drift.compare import run_report, run_stattests


@pytest.fixture(scope="module")
def asymmetric():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(0, 1, 3000)}), pd.DataFrame({"x": rng.normal(0, 3, 3000)})


def test_documented_signature_is_current_then_reference():
    from evidently import Report

    params = list(inspect.signature(Report.run).parameters)
    assert params[1:3] == ["current_data", "reference_data"]


@pytest.mark.parametrize("engine", [run_report, run_stattests])
def test_swapping_current_and_reference_changes_the_score_and_ours_is_the_documented_order(asymmetric, engine):
    reference, current = asymmetric
    kw = dict(cat_method="psi", cat_threshold=0.1, num_method="wasserstein", num_threshold=0.1)
    ours = engine(current, reference, [], ["x"], **kw)[1]["x"][2]
    swapped = engine(reference, current, [], ["x"], **kw)[1]["x"][2]
    w1 = wasserstein_distance(reference["x"], current["x"])
    assert ours == pytest.approx(w1 / np.std(reference["x"]), rel=1e-6)  # normalised by the reference
    assert swapped == pytest.approx(w1 / np.std(current["x"]), rel=1e-6)
    assert ours > 2.5 * swapped
