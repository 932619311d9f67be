"""The drift job over a real event lake (written by the stream processor's LakeWriter): windows,
outcome baseline, streak, trigger decisions, audit, gauges, workspace and HTML report.

The user features come from a table of the study's
per-user features (the job takes any `lookup(user_ids) -> rows`), so the windows hold the study's
known distributions; the Feast online read itself is tested in test_features.py against a real Redis."""

from __future__ import annotations

import json


def gauge(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels)


def test_baseline_then_sustained_drift_triggers_once_in_dry_run(study, lake_job):
    none, _ = study.windows("none", 3, stream=31)
    drift, _ = study.windows("new_users", 4, change_at=0, stream=32)
    job, metrics = lake_job(none + drift)
    reps = job.run_once()
    assert [r.status for r in reps] == ["compared"] * 7
    assert [r.comparison.groups["outcomes"].skipped for r in reps[:3]] == ["baseline not ready"] * 3
    assert reps[3].comparison.groups["outcomes"].skipped is None  # the baseline is complete from window 4 on
    assert [r.comparison.drifted for r in reps] == [False, False, False, True, True, True, True]
    assert [r.streak for r in reps] == [0, 0, 0, 1, 2, 3, 4]
    actions = [json.loads(x)["action"] for x in (job.cfg.state_dir / "decisions.jsonl").read_text().splitlines()]
    assert actions == ["none", "none", "none", "none", "none", "dry_run", "already_fired"]
    assert not list(job.cfg.state_dir.glob("retrain-*.log"))  # dry run: nothing started
    assert job.run_once() == []  # every window handled once (the watermark moved past them)
    assert gauge(metrics, "drift_dataset_drift") == 1.0
    assert gauge(metrics, "drift_group_drift", group="features") == 1.0
    assert gauge(metrics, "drift_consecutive_drifted_windows") == 4.0
    assert gauge(metrics, "drift_window_rows", table="impressions") == reps[-1].n_impressions
    assert gauge(metrics, "drift_column_drifted", group="scores", frame="served", column="fallback") == 1.0
    assert gauge(metrics, "drift_baseline_ready") == 1.0
    assert gauge(metrics, "drift_windows_total", outcome="compared") == 7.0


def test_small_windows_are_recorded_not_compared(study, lake_job):
    (w,), _ = study.windows("none", 1, stream=41)
    job, metrics = lake_job([w], min_impressions=10_000)
    reps = job.run_once()
    assert [r.status for r in reps] == ["too_small"]
    assert gauge(metrics, "drift_windows_total", outcome="too_small") == 1.0
    assert job.run_once() == []


def test_report_engine_stores_workspace_runs_and_the_html_report(study, lake_job):
    (w,), _ = study.windows("new_users", 1, change_at=0, stream=51)
    job, _ = lake_job([w], engine="report")
    (rep,) = job.run_once()
    assert rep.comparison.drifted and rep.html and (job.cfg.state_dir / "reports" / "latest.html").stat().st_size > 10_000
    assert len(list((job.cfg.state_dir / "reports").glob("2*.html"))) == 1  # the drifted window is kept
    from monitoring.drift.workspace import project

    ws, proj = project(job.cfg.state_dir / "workspace")
    runs = ws.list_runs(proj.id)
    assert len(runs) == 1  # the served frame; the outcome frames wait for the baseline (one window only)
    assert ws.get_run(proj.id, runs[0]) is not None
