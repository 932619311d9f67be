"""Evidently 0.7 over one window: one Report per frame, current data FIRST.

    Report([DataDriftPreset(columns, num_method, cat_method, per_column_method, ...)],
           include_tests=True).run(current, reference)          # Evidently's documented order

Per column the preset yields a ValueDrift metric (its score) and a test whose
status is Evidently's own verdict: FAIL = drifted (score >= threshold for a
distance, p-value < threshold for a test). The preset's DriftedColumnsCount
gives the drifted share. A group is flagged by its rule:
    features   share of drifted feature columns >= DRIFT_SHARE (Evidently's dataset-drift rule)
    scores     any column drifted (prediction drift)
    outcomes   any column of any outcome frame drifted (the tests run at DRIFT_OUTCOME_P)
and the window is drifted when any group is.

Methods by column type (settings): numeric vs the training reference
DRIFT_NUM_METHOD (normed Wasserstein, 0.1), categorical DRIFT_CAT_METHOD (PSI,
0.1); the two score columns are judged alone (any-column rule), so their
threshold DRIFT_SCORE_THRESHOLD (0.2) sits above the no-drift noise of a window
(95th percentile 0.11 at 500 impressions in the study); the outcome columns are compared with a small served baseline, so they use
two-sample tests: chi-square of homogeneity for categories ("chisquare_2s",
monitoring/drift/stattests.py: Evidently's own "chisquare" is a goodness-of-fit
test and wrong here), KS for numbers, at p < DRIFT_OUTCOME_P.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from monitoring.drift import stattests
from monitoring.drift.frames import FEATURE_CAT, FEATURE_NUM, OUTCOME_FRAMES, SCORE_CAT, SCORE_NUM

os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's telemetry: never leave the machine


@dataclass(frozen=True)
class Methods:
    num_method: str = "wasserstein"
    num_threshold: float = 0.1
    cat_method: str = "psi"
    cat_threshold: float = 0.1
    drift_share: float = 0.5
    score_threshold: float = 0.2
    outcome_p: float = 0.002

    @classmethod
    def from_settings(cls, s) -> Methods:
        return cls(s.drift_num_method, s.drift_num_threshold, s.drift_cat_method, s.drift_cat_threshold,
                   s.drift_share, s.drift_score_threshold, s.drift_outcome_p)


@dataclass
class ColumnResult:
    group: str
    frame: str
    column: str
    method: str
    threshold: float
    score: float
    drifted: bool


@dataclass
class GroupResult:
    name: str
    drifted: bool
    share: float  # drifted columns / columns, over the group's frames
    columns: list[ColumnResult] = field(default_factory=list)
    skipped: str | None = None  # why the group was not compared (e.g. baseline not ready)


@dataclass
class Comparison:
    groups: dict[str, GroupResult]
    snapshots: dict[str, object]  # frame name -> Evidently Snapshot
    evidently_s: float  # wall time inside Report.run

    @property
    def drifted(self) -> bool:
        return any(g.drifted for g in self.groups.values())

    @property
    def share(self) -> float:
        cols = [c for g in self.groups.values() for c in g.columns]
        return sum(c.drifted for c in cols) / len(cols) if cols else 0.0

    def columns(self) -> list[ColumnResult]:
        return [c for g in self.groups.values() for c in g.columns]


def _verdicts(d: dict) -> tuple[dict, float]:
    """{column: (method, threshold, score, drifted)} and the drifted share from a snapshot's dict()."""
    status = {t["metric_config"]["metric_id"]: str(getattr(t["status"], "value", t["status"])) for t in d["tests"]}
    out, share = {}, 0.0
    for m in d["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith("ValueDrift"):
            out[cfg["column"]] = (cfg["method"], float(cfg["threshold"]), float(m["value"]),
                                  status.get(m["id"]) == "FAIL")
        elif cfg["type"].endswith("DriftedColumnsCount"):
            share = float(m["value"]["share"])
    return out, share


def run_report(current: pd.DataFrame, reference: pd.DataFrame, cat: list[str], num: list[str], *,
               cat_method: str, cat_threshold: float, num_method: str, num_threshold: float,
               drift_share: float = 0.5, per_column_threshold: dict[str, float] | None = None):
    """One Evidently Report (DataDriftPreset) over the columns; returns (snapshot, verdicts, share).
    `current` is the window, `reference` the reference: current FIRST, as Evidently documents."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    cols = cat + num
    dd = DataDefinition(categorical_columns=cat, numerical_columns=num)
    preset = DataDriftPreset(columns=cols, drift_share=drift_share, cat_method=cat_method, num_method=num_method,
                             cat_threshold=cat_threshold, num_threshold=num_threshold,
                             per_column_threshold=per_column_threshold)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's warnings on constant columns; the score says it
        snap = Report([preset], include_tests=True).run(Dataset.from_pandas(current[cols], data_definition=dd),
                                                        Dataset.from_pandas(reference[cols], data_definition=dd))
    verdicts, share = _verdicts(snap.dict())
    return snap, verdicts, share


def run_stattests(current: pd.DataFrame, reference: pd.DataFrame, cat: list[str], num: list[str], *,
                  cat_method: str, cat_threshold: float, num_method: str, num_threshold: float,
                  drift_share: float = 0.5, per_column_threshold: dict[str, float] | None = None):
    """The same per-column verdicts without a Report: Evidently's registered stat tests, called the way
    its ValueDrift calls them (inf/NaN dropped; the legacy signature takes the REFERENCE first). No
    widgets are rendered, so it is several times faster; a test checks it agrees with run_report."""
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cols, ctype, method, thr in ((cat, ColumnType.Categorical, cat_method, cat_threshold),
                                         (num, ColumnType.Numerical, num_method, num_threshold)):
            for c in cols:
                thr_c = (per_column_threshold or {}).get(c, thr)
                r = reference[c].replace([np.inf, -np.inf], np.nan).dropna()
                x = current[c].replace([np.inf, -np.inf], np.nan).dropna()
                test = get_stattest(r, x, ctype, method)
                res = test(r, x, ctype, thr_c)
                out[c] = (method, float(thr_c), float(res.drift_score), bool(res.drifted))
    share = sum(v[3] for v in out.values()) / len(out) if out else 0.0
    return None, out, share


ENGINES = {"report": run_report, "stattest": run_stattests}


def compare(frames, ref, baseline: dict[str, pd.DataFrame] | None, methods: Methods,
            engine: str = "report") -> Comparison:
    """All groups of one window. `baseline` None: the outcome group is skipped (not yet collected)."""
    m, run = methods, ENGINES[engine]
    group_of = {c: "features" for c in FEATURE_CAT + FEATURE_NUM} | {c: "scores" for c in SCORE_CAT + SCORE_NUM}
    plan = [("served", frames.served, ref.served, FEATURE_CAT + SCORE_CAT, FEATURE_NUM + SCORE_NUM,
             dict(cat_method=m.cat_method, cat_threshold=m.cat_threshold, num_method=m.num_method,
                  num_threshold=m.num_threshold, drift_share=m.drift_share,
                  per_column_threshold=dict.fromkeys(SCORE_NUM, m.score_threshold)))]
    if baseline is not None:
        for name, (cat, num) in OUTCOME_FRAMES.items():
            if len(frames.outcomes[name]) and len(baseline[name]):
                plan.append((name, frames.outcomes[name], baseline[name], cat, num,
                             dict(cat_method=stattests.register(), cat_threshold=m.outcome_p, num_method="ks",
                                  num_threshold=m.outcome_p)))
    groups: dict[str, GroupResult] = {g: GroupResult(g, False, 0.0) for g in ("features", "scores", "outcomes")}
    snaps, t_ev = {}, 0.0
    for frame, cur, base, cat, num, kw in plan:
        t0 = time.perf_counter()
        snap, cols, _ = run(cur, base, cat, num, **kw)
        t_ev += time.perf_counter() - t0
        snaps[frame] = snap
        for c, v in cols.items():
            g = group_of.get(c, "outcomes")
            groups[g].columns.append(ColumnResult(g, frame, c, *v))
    for g in groups.values():
        g.share = sum(c.drifted for c in g.columns) / len(g.columns) if g.columns else 0.0
        g.drifted = (g.share >= m.drift_share) if g.name == "features" else any(c.drifted for c in g.columns)
    if not groups["outcomes"].columns:
        groups["outcomes"].skipped = "baseline not ready" if baseline is None else "no clicks"
    return Comparison(groups=groups, snapshots=snaps, evidently_s=t_ev)
