"""Prometheus metrics of the drift job (served at DRIFT_METRICS_PORT/metrics). Ours: no maintained
exporter speaks Evidently 0.7's API. Gauges hold the LAST compared window.

    drift_dataset_drift                            1 when the window drifted (any group), else 0
    drift_group_drift{group}                       features | scores | outcomes: 1 when that group drifted
    drift_share_drifted_columns{group}             drifted columns / columns of the group (and group="all")
    drift_column_score{group,frame,column,method}  Evidently's score: a distance (psi, wasserstein) or a p-value
    drift_column_drifted{group,frame,column}       Evidently's verdict for the column (1 = drifted)
    drift_column_threshold{group,frame,column}     the threshold the score was judged against
    drift_window_rows{table}                       impressions | clicks in the window
    drift_window_start_timestamp_seconds           event-time bounds of the window (unix seconds)
    drift_window_end_timestamp_seconds
    drift_window_age_seconds                       now - window end, computed at scrape time
    drift_last_run_timestamp_seconds               wall time the last window was compared
    drift_window_seconds{part}                     total | evidently: time spent on the last window
    drift_consecutive_drifted_windows              the current streak
    drift_trigger_windows                          the configured N of "sustained" (the alert compares to it)
    drift_baseline_ready                           1 when the outcome baseline of the served model is complete
    drift_windows_total{outcome}                   compared | too_small | error
    drift_retrain_decisions_total{action}          trigger | dry_run | cooldown | already_fired | none | ...
    drift_variant_impressions_total{variant}       served lists read from the lake, by the recommender's arm
    drift_variant_list_clicks_total{variant}       clicks on those lists (joined by request_id): their ratio
                                                   over a range is the CTR per arm (experiments dashboard)
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge


class DriftMetrics:
    def __init__(self, registry: CollectorRegistry | None = None, trigger_windows: int = 3):
        self.registry = r = registry or CollectorRegistry()
        self.dataset = Gauge("drift_dataset_drift", "1 when the last window drifted", registry=r)
        self.group = Gauge("drift_group_drift", "1 when the group drifted", ["group"], registry=r)
        self.share = Gauge("drift_share_drifted_columns", "share of drifted columns", ["group"], registry=r)
        self.score = Gauge("drift_column_score", "Evidently drift score per column",
                           ["group", "frame", "column", "method"], registry=r)
        self.drifted = Gauge("drift_column_drifted", "1 when Evidently flags the column",
                             ["group", "frame", "column"], registry=r)
        self.threshold = Gauge("drift_column_threshold", "threshold of the column's method",
                               ["group", "frame", "column"], registry=r)
        self.rows = Gauge("drift_window_rows", "rows in the window", ["table"], registry=r)
        self.start = Gauge("drift_window_start_timestamp_seconds", "window start (event time)", registry=r)
        self.end = Gauge("drift_window_end_timestamp_seconds", "window end (event time)", registry=r)
        self.age = Gauge("drift_window_age_seconds", "now minus the window end", registry=r)
        self.age.set_function(lambda: time.time() - self.end._value.get() if self.end._value.get() else float("nan"))
        self.last_run = Gauge("drift_last_run_timestamp_seconds", "wall time of the last comparison", registry=r)
        self.seconds = Gauge("drift_window_seconds", "time spent on the last window", ["part"], registry=r)
        self.streak = Gauge("drift_consecutive_drifted_windows", "drifted windows in a row", registry=r)
        self.trigger_windows = Gauge("drift_trigger_windows", "windows in a row that make drift sustained",
                                     registry=r)
        self.trigger_windows.set(trigger_windows)
        self.baseline_ready = Gauge("drift_baseline_ready", "1 when the outcome baseline is complete", registry=r)
        self.windows = Counter("drift_windows", "windows seen, by outcome", ["outcome"], registry=r)
        self.decisions = Counter("drift_retrain_decisions", "retrain decisions, by action", ["action"], registry=r)
        self.arm_impressions = Counter("drift_variant_impressions", "served lists in compared windows, by arm",
                                       ["variant"], registry=r)
        self.arm_clicks = Counter("drift_variant_list_clicks", "clicks on served lists in compared windows, by arm",
                                  ["variant"], registry=r)
        for o in ("compared", "too_small", "error"):
            self.windows.labels(o)
        for a in ("trigger", "dry_run", "cooldown", "already_fired", "none", "trigger_failed"):
            self.decisions.labels(a)

    def record(self, report) -> None:
        """Set the gauges from a compared window (monitoring.drift.job.WindowReport)."""
        c = report.comparison
        self.dataset.set(int(c.drifted))
        for g in c.groups.values():
            self.group.labels(g.name).set(int(g.drifted))
            self.share.labels(g.name).set(g.share)
        self.share.labels("all").set(c.share)
        for col in c.columns():
            self.score.labels(col.group, col.frame, col.column, col.method).set(col.score)
            self.drifted.labels(col.group, col.frame, col.column).set(int(col.drifted))
            self.threshold.labels(col.group, col.frame, col.column).set(col.threshold)
        self.rows.labels("impressions").set(report.n_impressions)
        self.rows.labels("clicks").set(report.n_clicks)
        self.start.set(report.start.timestamp())
        self.end.set(report.end.timestamp())
        self.last_run.set(time.time())
        self.seconds.labels("total").set(report.seconds)
        self.seconds.labels("evidently").set(c.evidently_s)
        self.streak.set(report.streak)
        for variant, (n_lists, n_clicks) in report.arms.items():
            self.arm_impressions.labels(variant).inc(n_lists)
            self.arm_clicks.labels(variant).inc(n_clicks)
