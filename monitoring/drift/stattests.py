"""A two-sample chi-square test, registered in Evidently's stat-test registry as "chisquare_2s".

Why: Evidently 0.7.23's "chisquare" is a goodness-of-fit test of the current
counts against the reference *proportions*, taken as exact (scipy.stats.chisquare
with f_exp = reference counts scaled to the current size; read in
evidently/legacy/calculations/stattests/chisquare_stattest.py). That is right
for a huge reference but anti-conservative for a small one: measured on this
project's no-drift study windows against a baseline 3x the window, p < 0.01 came
out far more often than 1 %. And a column with one category in both samples gets
p = 0 (chi-square with 0 degrees of freedom), i.e. "drift" on a constant. The
outcome columns are compared with a small served baseline, so they need the
two-sample test of homogeneity (scipy.stats.chi2_contingency on the 2 x K table).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NAME = "chisquare_2s"
_registered = False


def chisquare_two_sample(reference: pd.Series, current: pd.Series) -> float:
    """p-value of the chi-square test of homogeneity of two categorical samples (1.0 with < 2 categories)."""
    from scipy.stats import chi2_contingency

    keys = sorted(set(reference.dropna().unique()) | set(current.dropna().unique()), key=str)
    if len(keys) < 2:
        return 1.0
    table = np.array([reference.value_counts().reindex(keys, fill_value=0).to_numpy(),
                      current.value_counts().reindex(keys, fill_value=0).to_numpy()], dtype=float)
    return float(chi2_contingency(table, correction=False)[1])


def register() -> str:
    """Make "chisquare_2s" known to Evidently (idempotent); returns the method name."""
    global _registered
    if not _registered:
        from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
        from evidently.legacy.core import ColumnType

        def impl(reference_data, current_data, feature_type, threshold):
            p = chisquare_two_sample(reference_data, current_data)
            return p, p < threshold

        register_stattest(StatTest(name=NAME, display_name="chi-square two-sample p_value",
                                   allowed_feature_types=[ColumnType.Categorical]), default_impl=impl)
        _registered = True
    return NAME
