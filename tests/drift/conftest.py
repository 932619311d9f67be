"""Drift fixtures: a reference built from MovieLens without training (monitoring.drift.reference),
the study that draws windows from it (monitoring.drift.study), both once per session, and a drift
job over a real event lake written by the stream processor's LakeWriter (`lake_job`)."""

from __future__ import annotations

import os
import time

import pandas as pd
import pytest

from minirec.events import Impression, Interaction
from monitoring.drift.job import DriftConfig, DriftJob
from monitoring.drift.metrics import DriftMetrics
from monitoring.drift.trigger import AuditLog, Retrainer, Trigger, TriggerConfig
from services.stream.lake import LakeWriter
from tests.stream.conftest import offline_tables  # noqa: F401 - the stream tests' tiny Feast tables

os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session")
def ml_reference(movielens, tmp_path_factory):
    from monitoring.drift.reference import build_reference

    return build_reference(movielens, tmp_path_factory.mktemp("drift_ref"))


@pytest.fixture(scope="session")
def study(ml_reference, movielens):
    from monitoring.drift.study import Study

    return Study(ml_reference, movielens, window=500, seed=0)


@pytest.fixture(scope="session")
def methods():
    from minirec.settings import Settings
    from monitoring.drift.compare import Methods

    return Methods.from_settings(Settings())  # the .env defaults, the ones `make drift` uses


@pytest.fixture(scope="session")
def study_baseline(study):
    return study.baseline(3)


W = 60.0


class UserTable:
    """user_id -> the feature row last seen for that user (unknown users -> empty rows)."""

    def __init__(self, windows):
        rows = {}
        for w in windows:
            for uid, f in zip(w.impressions["user_id"], w.features.to_dict("records"), strict=True):
                if f and not pd.isna(f.get("gender")):
                    rows[int(uid)] = f
        self.rows = rows

    def __call__(self, ids):
        return pd.DataFrame([self.rows.get(int(u), {}) for u in ids], index=range(len(ids)))


def write_lake(root, windows, t0: float):
    """Study window i -> events in [t0 + i*W, t0 + (i+1)*W)."""
    lw = LakeWriter(root)
    for i, w in enumerate(windows):
        n = len(w.impressions)
        at = {rid: pd.Timestamp(t0 + i * W + W * j / n, unit="s", tz="UTC")
              for j, rid in enumerate(w.impressions["request_id"])}
        # every other list served by the treatment arm (the drift groups ignore the arm; the
        # experiments dashboard's CTR per arm reads it)
        events = [Impression(user_id=int(r.user_id), request_id=r.request_id, items=list(r.items),
                             scores=list(r.scores), model_version="v1", fallback=r.fallback,
                             variant="treatment" if j % 2 else "control", event_time=at[r.request_id])
                  for j, r in enumerate(w.impressions.itertuples())]
        user_time = {int(r.user_id): at[r.request_id] for r in w.impressions.itertuples()}
        events += [Interaction(user_id=int(c.user_id), item_id=int(c.item_id), action="click",
                               request_id=c.request_id, position=None if pd.isna(c.position) else int(c.position),
                               event_time=at[c.request_id] if c.request_id else user_time[int(c.user_id)])
                   for c in w.clicks.itertuples()]
        lw.write(events)


@pytest.fixture
def lake_job(study, tmp_path, ml_reference, movielens, methods):
    def make(scenario_windows, *, engine="stattest", mode="job", dry_run=True, min_impressions=200):
        t0 = (time.time() // W) * W - W * (len(scenario_windows) + 2)
        write_lake(tmp_path / "lake", scenario_windows, t0)
        cfg = DriftConfig(lake_dir=tmp_path / "lake", reference_dir=ml_reference,
                          items_table=movielens / "items.parquet", state_dir=tmp_path / "drift", window_s=W,
                          lateness_s=0, min_impressions=min_impressions, baseline_windows=3, trigger_windows=3,
                          mode=mode, methods=methods, engine=engine)
        metrics = DriftMetrics(trigger_windows=3)
        trig = Trigger(TriggerConfig(3, 3600, dry_run), cfg.state_dir / "trigger.json",
                       AuditLog(cfg.state_dir / "decisions.jsonl"),
                       Retrainer(command="true", cwd=tmp_path, log_dir=cfg.state_dir))
        return DriftJob(cfg, UserTable(scenario_windows), metrics, trig), metrics
    return make



