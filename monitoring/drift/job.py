"""The drift job: closed windows of the lake -> frames -> Evidently -> gauges, workspace, HTML, trigger.

    lake impressions/interactions, tumbling event-time windows of DRIFT_WINDOW_S, each read once it
    closed DRIFT_LATENESS_S ago (state.json keeps the watermark = end of the last window handled)
      --user features of each impression's user (Feast online store: what the recommender reads)-->
      frames --compare(current, reference)--> Prometheus gauges, Evidently workspace run per frame,
      HTML report (latest window; drifted windows are kept), audit line, trigger (job mode)

Windows with fewer than DRIFT_MIN_IMPRESSIONS impressions are recorded as too_small
and skipped (their statistics would be noise). A window whose features cannot be
read (online store down) is counted as an error and retried on the next pass:
the watermark only moves past windows that were handled.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from minirec import lake
from monitoring.drift.baseline import Baseline
from monitoring.drift.compare import Comparison, Methods, compare
from monitoring.drift.frames import Reference, current_frames
from monitoring.drift.trigger import AuditLog, Trigger, streak

log = logging.getLogger("drift")
KEEP_REPORTS = 20  # HTML reports of drifted windows kept (each a few MB)


@dataclass
class DriftConfig:
    lake_dir: Path
    reference_dir: Path
    items_table: Path
    state_dir: Path
    window_s: float = 60.0
    lateness_s: float = 5.0
    min_impressions: int = 200
    baseline_windows: int = 3
    trigger_windows: int = 3
    mode: str = "alertmanager"  # or "job"
    methods: Methods = field(default_factory=Methods)
    engine: str = "report"  # "stattest": same verdicts, no snapshots (no workspace or HTML)
    workspace: bool = True

    @classmethod
    def from_settings(cls, s=None) -> DriftConfig:
        from minirec.settings import get_settings

        s = s or get_settings()
        return cls(lake_dir=s.drift_lake_path, reference_dir=s.drift_reference_path,
                   items_table=s.path(s.recommender_items_table), state_dir=s.drift_path, window_s=s.drift_window_s,
                   lateness_s=s.drift_lateness_s, min_impressions=s.drift_min_impressions,
                   baseline_windows=s.drift_baseline_windows, trigger_windows=s.drift_trigger_windows,
                   mode=s.drift_trigger_mode, methods=Methods.from_settings(s))


IMPRESSION_COLUMNS = ["user_id", "request_id", "items", "scores", "model_version", "fallback"]


def read_impressions(lake_dir: Path, start: datetime, end: datetime) -> pd.DataFrame:
    """A window's impressions with their arm; lake files written before Impression had a `variant`
    lack the column, and their lists were all served by the control."""
    try:
        return lake.read_range(lake_dir, "impressions", start, end, columns=[*IMPRESSION_COLUMNS, "variant"])
    except (KeyError, pa.ArrowInvalid):
        imp = lake.read_range(lake_dir, "impressions", start, end, columns=IMPRESSION_COLUMNS)
        return imp.assign(variant="control")


def per_arm(impressions: pd.DataFrame, clicks: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """variant -> (lists served, clicks on those lists); a click counts for the arm whose list it came from."""
    arm = impressions.set_index("request_id")["variant"].fillna("control")
    clicked = clicks["request_id"].dropna().map(arm).dropna()
    lists = arm.value_counts()
    hits = clicked.value_counts()
    return {str(v): (int(lists[v]), int(hits.get(v, 0))) for v in lists.index}


@dataclass
class WindowReport:
    start: datetime
    end: datetime
    status: str  # compared | too_small
    n_impressions: int
    n_clicks: int = 0
    model_version: str | None = None
    comparison: Comparison | None = None
    streak: int = 0
    seconds: float = 0.0
    html: str | None = None
    arms: dict[str, tuple[int, int]] = field(default_factory=dict)  # variant -> (lists served, clicks on them)

    def summary(self) -> dict:
        out = {"window": {"start": self.start.isoformat(), "end": self.end.isoformat(),
                          "impressions": self.n_impressions, "clicks": self.n_clicks},
               "status": self.status, "model_version": self.model_version, "streak": self.streak}
        if self.comparison is not None:
            c = self.comparison
            out |= {"drifted": c.drifted, "share": round(c.share, 4),
                    "groups": {g.name: {"drifted": g.drifted, "share": round(g.share, 4), "skipped": g.skipped}
                               for g in c.groups.values()},
                    "drifted_columns": [{"frame": x.frame, "column": x.column, "method": x.method,
                                         "score": x.score, "threshold": x.threshold}
                                        for x in c.columns() if x.drifted],
                    "seconds": round(self.seconds, 3), "evidently_seconds": round(c.evidently_s, 3)}
        return out


def _floor(ts: float, w: float) -> float:
    return float(np.floor(ts / w) * w)


class DriftJob:
    def __init__(self, cfg: DriftConfig, lookup, metrics=None, trigger: Trigger | None = None):
        """`lookup(user_ids) -> DataFrame` gives the user features, one row per id in order."""
        self.cfg, self.lookup, self.metrics, self.trigger = cfg, lookup, metrics, trigger
        self.state_path = cfg.state_dir / "state.json"
        self.audit = trigger.audit if trigger else AuditLog(cfg.state_dir / "decisions.jsonl")
        self.baseline = Baseline(cfg.state_dir / "baseline", cfg.baseline_windows)
        self._ref: Reference | None = None
        self._project = None

    # ---------------------------------------------------------------- state
    def state(self) -> dict:
        if self.state_path.exists():
            return json.loads(self.state_path.read_text())
        return {"watermark": None, "streak": 0, "streak_start": None}

    def _save(self, st: dict) -> None:
        self.cfg.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(st))
        tmp.replace(self.state_path)

    def reference(self) -> Reference:
        if self._ref is None:
            self._ref = Reference.load(self.cfg.reference_dir, self.cfg.items_table)
        return self._ref

    # ---------------------------------------------------------------- windows
    def closed_windows(self, now: float, max_windows: int = 50) -> list[tuple[float, float]]:
        """(start, end) unix seconds of the closed, unhandled windows that hold impressions, oldest first."""
        wm = self.state()["watermark"]
        lo = datetime.fromtimestamp(wm, UTC) if wm is not None else lake.oldest_time(self.cfg.lake_dir, "impressions")
        if lo is None:
            return []
        ts = lake.read_range(self.cfg.lake_dir, "impressions", lo, datetime.fromtimestamp(now, UTC),
                             columns=["event_timestamp"])["event_timestamp"]
        if ts.empty:
            return []
        w = self.cfg.window_s
        starts = sorted({_floor(t.timestamp(), w) for t in pd.to_datetime(ts, utc=True)})
        closed = [(s, s + w) for s in starts if s + w + self.cfg.lateness_s <= now and (wm is None or s >= wm)]
        return closed[-max_windows:] if wm is None else closed[:max_windows]

    def evaluate(self, start: float, end: float) -> WindowReport:
        """Compare one window; updates the baseline, the streak and the state; never raises for drift."""
        t0 = time.perf_counter()
        s_dt, e_dt = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
        imp = read_impressions(self.cfg.lake_dir, s_dt, e_dt)
        st = self.state()
        if len(imp) < self.cfg.min_impressions:
            self._save({**st, "watermark": end})
            return WindowReport(s_dt, e_dt, "too_small", len(imp))
        inter = lake.read_range(self.cfg.lake_dir, "interactions", s_dt, e_dt,
                                columns=["user_id", "item_id", "action", "request_id", "position"])
        clicks = inter[inter["action"] == "click"]
        feats = self.lookup(imp["user_id"].astype(int).tolist())
        ref = self.reference()
        frames = current_frames(imp, clicks, feats, ref)
        answered = imp.loc[imp["fallback"].isna(), "model_version"]
        version = str(answered.mode().iat[0]) if len(answered) else str(imp["model_version"].mode().iat[0])
        base = self.baseline.ready_for(version)
        c = compare(frames, ref, base, self.cfg.methods, engine=self.cfg.engine)
        if base is None:
            self.baseline.add(version, frames.outcomes)
        n = streak(st["streak"], c.drifted)
        first = st["streak_start"] if n > 1 else (start if n == 1 else None)
        self._save({"watermark": end, "streak": n, "streak_start": first})
        rep = WindowReport(s_dt, e_dt, "compared", len(imp), len(clicks), version, c, n, arms=per_arm(imp, clicks))
        rep.html = self._store(rep)
        rep.seconds = time.perf_counter() - t0
        self._decide(rep, first)
        if self.metrics:
            self.metrics.record(rep)
            self.metrics.baseline_ready.set(int(self.baseline.ready_for(version) is not None))
        return rep

    def _decide(self, rep: WindowReport, episode_start: float | None) -> None:
        ctx = rep.summary()
        if self.trigger is not None and self.cfg.mode == "job":
            sustained = rep.streak >= self.cfg.trigger_windows
            episode = datetime.fromtimestamp(episode_start, UTC).isoformat() if sustained else None
            self.trigger.signal(sustained=sustained, episode=episode, source="job", context=ctx)
        else:
            self.audit.write({"source": "job", "action": "observed", **ctx})

    # ---------------------------------------------------------------- outputs
    def _store(self, rep: WindowReport) -> str | None:
        """Workspace runs (one per frame) and the HTML report of the served frame."""
        snaps = {k: v for k, v in rep.comparison.snapshots.items() if v is not None}
        if not snaps or not self.cfg.workspace:
            return None
        from monitoring.drift.workspace import html_report, project

        ws, proj = project(self.cfg.state_dir / "workspace")
        stamp = rep.start.strftime("%Y%m%dT%H%M%S")
        for frame, snap in snaps.items():
            ws.add_run(proj.id, snap, include_data=False, name=f"{stamp} {frame}")
        return str(html_report(snaps["served"], self.cfg.state_dir / "reports", stamp, rep.comparison.drifted,
                               keep=KEEP_REPORTS))

    def run_once(self, now: float | None = None, max_windows: int = 50) -> list[WindowReport]:
        """Every closed, unhandled window (at most `max_windows`); errors are counted and retried."""
        now = time.time() if now is None else now
        out = []
        for start, end in self.closed_windows(now, max_windows):
            try:
                rep = self.evaluate(start, end)
            except (OSError, ConnectionError, TimeoutError) as exc:  # online store or lake unavailable
                log.warning("window %s: %s; retried on the next pass", datetime.fromtimestamp(start, UTC), exc)
                if self.metrics:
                    self.metrics.windows.labels("error").inc()
                break
            if self.metrics:
                self.metrics.windows.labels(rep.status).inc()
            out.append(rep)
        return out
