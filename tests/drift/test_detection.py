"""Detection on study windows (monitoring.drift.study): no-drift windows from the reference period are
rarely flagged; each simulator drift scenario is flagged within 3 windows of its start."""

from __future__ import annotations

import pytest

from monitoring.drift.compare import compare, run_report, run_stattests


def flags(study, windows, baseline, methods):
    return [compare(study.frames(w), study.reference, baseline, methods, engine="stattest").drifted for w in windows]


def test_no_drift_windows_are_flagged_at_most_5_percent(study, study_baseline, methods):
    windows, _ = study.windows("none", 40, stream=1)
    flagged = flags(study, windows, study_baseline, methods)
    assert len(flagged) == 40
    assert sum(flagged) <= 2, f"{sum(flagged)} of 40 no-drift windows flagged"


@pytest.mark.parametrize("scenario", ["genre_shift", "new_users", "popularity_shock"])
def test_each_scenario_is_flagged_within_3_windows(study, study_baseline, methods, scenario):
    windows, change = study.windows(scenario, 8, change_at=3, stream=11)
    flagged = flags(study, windows, study_baseline, methods)
    delay = next((i - change for i in range(change, len(flagged)) if flagged[i]), None)
    print(f"{scenario}: change at window {change}, flags {flagged}, delay {delay}")
    assert delay is not None and delay <= 2, f"{scenario} not flagged within 3 windows: {flagged}"
    assert sum(flagged[:change]) <= 1  # before the change it is a no-drift window like the others


def test_the_fast_path_gives_the_reports_verdicts(study, study_baseline, methods):
    """run_stattests (used by the study) = run_report (used by the live job), column by column."""
    from monitoring.drift.frames import FEATURE_CAT, FEATURE_NUM, SCORE_CAT, SCORE_NUM

    (w,), _ = study.windows("new_users", 1, change_at=0, stream=21)
    f = study.frames(w)
    kw = dict(cat_method=methods.cat_method, cat_threshold=methods.cat_threshold, num_method=methods.num_method,
              num_threshold=methods.num_threshold)
    cat, num = FEATURE_CAT + SCORE_CAT, FEATURE_NUM + SCORE_NUM
    snap, slow, _ = run_report(f.served, study.reference.served, cat, num, **kw)
    _, fast, _ = run_stattests(f.served, study.reference.served, cat, num, **kw)
    assert snap is not None and set(slow) == set(fast) == set(cat + num)
    for c in slow:
        assert slow[c][2] == pytest.approx(fast[c][2], rel=1e-9, abs=1e-12), c
        assert slow[c][3] == fast[c][3], c
    assert any(v[3] for v in slow.values())  # the new-user window does drift, so the verdicts are not all False
