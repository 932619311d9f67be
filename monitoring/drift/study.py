"""The offline detection study behind `make drift-eval` and the detection tests.

    reference/features.parquet rows --split in two halves (seeded)--> reference half | pool half
    pool rows --sample W per window--> sessions (user, time, next items) --scenario.plan-->
        served list + scores --ClickModel.click + scenario.attract/organic--> clicks
        --frames.current_frames--> compare.compare(current, reference half, baseline)

Windows are built in the drift job's own input form (impressions and click
interactions with the lake's columns, plus the user features per impression),
so the frames and the comparison are the live job's code. What stands in for
the live system, and why:
  * who arrives: pool rows are training-period labels of the *other* half of the
    reference sample, so no-drift windows come from the reference period but are
    disjoint from the half they are compared with;
  * the served list: the recommender's own popularity fallback (training-period
    counts, minus the user's already rated items); a known user's scores are
    that user's reference top-1 / top-10 scores; a new user gets the popularity
    list, `fallback="cold_start"` and log1p(count) scores, as the service does;
  * clicks and drift: the simulator's ClickModel and scenario objects
    (services/simulator), seeded per session exactly as the simulator seeds them.
This harness (not the live job) imports the simulator: it is a study, like a benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from monitoring.drift.compare import Methods, compare
from monitoring.drift.frames import (
    FEATURE_CAT,
    FEATURE_NUM,
    Reference,
    current_frames,
    reference_served,
)

WINDOW_SPACING_S = 3600.0  # event-time length of one study window (sessions spread evenly inside)
T0 = pd.Timestamp("2030-01-01", tz="UTC")  # study windows start here (any fixed time)


@dataclass
class Window:
    impressions: pd.DataFrame
    clicks: pd.DataFrame
    features: pd.DataFrame  # aligned with impressions


class Study:
    def __init__(self, ref_dir: Path, data_dir: Path, *, window: int = 500, k: int = 10, seed: int = 0):
        from minirec.train.split import temporal_split
        from services.simulator.scenarios import Catalogue

        self.window, self.k, self.seed = window, k, seed
        full = Reference.load(ref_dir, Path(data_dir) / "items.parquet")
        feats = pd.read_parquet(Path(ref_dir) / "features.parquet")
        scores = pd.read_parquet(Path(ref_dir) / "scores.parquet")
        half = np.random.default_rng(np.random.SeedSequence([seed, 0xD1F7])).random(len(feats)) < 0.5
        self.reference = replace(full, served=reference_served(feats[half].reset_index(drop=True), scores),
                                 source=full.source + " (study: one half of the rows)")
        pool = feats[~half].reset_index(drop=True)
        self.pool_users = pool["user_id"].to_numpy(np.int64)
        self.pool_times = pd.to_datetime(pool["label_timestamp"], utc=True).astype("datetime64[ns, UTC]")
        self.pool_features = pool[[c for c in FEATURE_CAT + FEATURE_NUM if c in pool]].to_dict("records")
        self.user_scores = scores.drop_duplicates("user_id").set_index("user_id")
        inter = pd.read_parquet(Path(data_dir) / "interactions.parquet",
                                columns=["user_id", "item_id", "rating", "event_timestamp"])
        train = temporal_split(inter).train
        counts = train["item_id"].value_counts()
        self.popular = [(int(i), float(np.log1p(c))) for i, c in counts.items()]  # most popular first
        inter = inter.sort_values(["user_id", "event_timestamp"], kind="stable")
        ts = pd.to_datetime(inter["event_timestamp"], utc=True).astype("datetime64[ns, UTC]").astype("int64").to_numpy()
        # user -> (event times ns, items, ratings), time-sorted: next items and seen items by searchsorted
        self.history = {int(u): (ts[idx], inter["item_id"].to_numpy()[idx], inter["rating"].to_numpy()[idx])
                        for u, idx in inter.groupby("user_id").indices.items()}
        self.catalogue = Catalogue.load(data_dir)

    def scenario(self, name: str):
        from services.simulator import scenarios

        return scenarios.make(name, self.catalogue, self.seed)

    def _sessions(self, n_windows: int, stream: int):
        """Sessions of consecutive windows (pool rows drawn with a generator of their own);
        returns them and {(user_id, t): (pool row, items the user rated before the label)}."""
        from services.simulator.replay import Session

        rng = np.random.default_rng(np.random.SeedSequence([self.seed, stream]))
        out, rows = [], {}
        for w in range(n_windows):
            picks = rng.choice(len(self.pool_users), size=self.window, replace=False)
            for j, r in enumerate(picks):
                uid, label_ns = int(self.pool_users[r]), int(self.pool_times.iloc[r].value)
                t = T0 + pd.Timedelta(seconds=w * WINDOW_SPACING_S + j * WINDOW_SPACING_S / self.window)
                ts, items, ratings = self.history[uid]
                k = int(np.searchsorted(ts, label_ns, side="left"))  # ratings from the label time on
                s = Session(index=len(out), user_id=uid, t=t,
                            next_items=dict(zip(items[k:].tolist(), ratings[k:].astype(float).tolist(), strict=True)))
                rows[(uid, t)] = (int(r), set(items[:k].tolist()))
                out.append(s)
        return out, rows

    def _serve(self, s, known: bool, seen: set[int]) -> tuple[list[int], list[float], str | None]:
        if not known:
            top = self.popular[: self.k]
            return [i for i, _ in top], [x for _, x in top], "cold_start"
        items = [i for i, _ in self.popular if i not in seen][: self.k]
        sc = self.user_scores.loc[s.user_id]
        top1, mean10 = float(sc["top1_score"]), float(sc["top10_mean_score"])
        rest = (mean10 * self.k - top1) / (self.k - 1)
        return items, [top1] + [rest] * (self.k - 1), None

    def windows(self, scenario: str = "none", n_windows: int = 1, change_at: int = 0,
                stream: int = 1) -> tuple[list[Window], int]:
        """`n_windows` windows and the first window the scenario acts in: from `change_at` on, or, for
        popularity_shock, from its own shock time (its `plan` puts it at the middle of the span)."""
        from services.simulator.clicks import ClickModel, session_rng
        from services.simulator.scenarios import PopularityShock, Scenario

        sessions, rows = self._sessions(n_windows, stream)
        scen, none = self.scenario(scenario), Scenario()
        window_of = lambda t: int((t - T0).total_seconds() // WINDOW_SPACING_S)  # noqa: E731
        if isinstance(scen, PopularityShock):
            plan = scen.plan(sessions)
            change_at, acts = window_of(scen.t_shock), lambda s: True  # the scenario checks the time itself
        else:
            plan = [s for s in sessions if window_of(s.t) < change_at]
            plan += scen.plan([s for s in sessions if window_of(s.t) >= change_at])
            acts = lambda s: window_of(s.t) >= change_at  # noqa: E731
        model, per_window = ClickModel(), {w: ([], [], []) for w in range(n_windows)}
        for n, s in enumerate(plan):
            act = scen if acts(s) else none
            r, seen = rows.get((s.user_id, s.t), (None, set()))
            known = r is not None
            items, scores, fallback = self._serve(s, known, seen)
            rid = f"s{stream}-{n}"
            rng = session_rng(self.seed, s.user_id, s.index)
            imp, clk, fts = per_window[window_of(s.t)]
            imp.append({"user_id": s.user_id, "request_id": rid, "items": items, "scores": scores,
                        "fallback": fallback, "model_version": "study", "event_timestamp": s.t})
            fts.append(self.pool_features[r] if known else {})
            for p in model.click(items, s.next_items, rng, act.attract(s)):
                clk.append({"user_id": s.user_id, "item_id": items[p], "request_id": rid, "position": p,
                            "event_timestamp": s.t})
            for i in act.organic(s, rng):
                clk.append({"user_id": s.user_id, "item_id": i, "request_id": None, "position": None,
                            "event_timestamp": s.t})
        cols = ["user_id", "item_id", "request_id", "position", "event_timestamp"]
        out = [Window(pd.DataFrame(imp), pd.DataFrame(clk, columns=cols), pd.DataFrame(fts, index=range(len(fts))))
               for imp, clk, fts in per_window.values()]
        return out, change_at

    def frames(self, w: Window):
        return current_frames(w.impressions, w.clicks, w.features, self.reference)

    def baseline(self, n_windows: int = 3, stream: int = 99) -> dict[str, pd.DataFrame]:
        """Outcome baseline: `n_windows` no-drift windows of their own stream, pooled."""
        from monitoring.drift.baseline import pool_outcomes

        return pool_outcomes([self.frames(w).outcomes for w in self.windows("none", n_windows, stream=stream)[0]])


def evaluate(study: Study, methods: Methods, *, n_null: int = 40, pre: int = 3, post: int = 5,
             scenarios=("genre_shift", "new_users", "popularity_shock"), engine: str = "stattest",
             baseline_windows: int = 3) -> dict:
    """False-alarm rate on no-drift windows and, per scenario, the detection delay in windows."""
    base = study.baseline(baseline_windows)

    def flags(windows):
        out = []
        for w in windows:
            c = compare(study.frames(w), study.reference, base, methods, engine=engine)
            out.append({"drifted": c.drifted, "groups": [g.name for g in c.groups.values() if g.drifted]})
        return out

    null = flags(study.windows("none", n_null, stream=1)[0])
    result = {"window_impressions": study.window, "engine": engine, "reference": study.reference.source,
              "n_null_windows": n_null, "false_alarms": sum(f["drifted"] for f in null),
              "false_alarm_rate": sum(f["drifted"] for f in null) / n_null, "scenarios": {}}
    for k, name in enumerate(scenarios, start=2):
        ws, at = study.windows(name, pre + post, change_at=pre, stream=k)
        fl = flags(ws)
        first = next((i - at for i in range(at, len(fl)) if fl[i]["drifted"]), None)
        result["scenarios"][name] = {
            "detected": first is not None and first <= 2, "delay_windows": first, "change_window": at,
            "flagged_before_change": sum(f["drifted"] for f in fl[:at]),
            "groups_at_detection": fl[at + first]["groups"] if first is not None else [],
            "flags": [f["drifted"] for f in fl]}
    return result
