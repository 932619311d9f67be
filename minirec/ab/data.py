"""The readout's data: exposures, impressions and clicks from the lake, joined at the user level.

    <lake>/exposures/date=*/part-*.parquet    user_id, event_timestamp, experiment, variant
    <lake>/impressions/date=*/part-*.parquet  user_id, event_timestamp, request_id, items, variant
    <lake>/interactions/date=*/part-*.parquet user_id, event_timestamp, action, request_id, ...
    (written by the stream processor; readers skip its hidden temp files, rows dedup by event_id)

      exposures of EXP --first per user--> arm (the assigned variant) + t0 (first exposure)
      impressions with time >= t0 ---------> lists and items shown to the user in the experiment
      clicks whose request_id is one of them -> clicks on those lists (organic clicks do not count)
      every interaction before t0 (lake + the base interactions file) -> pre-period activity (CUPED)

One row per exposed user: user_id, arm, t0, impressions (items shown), lists, clicks, pre,
converted (clicked at least once). Users exposed to two arms of one experiment (a changed salt
or weights mid-run) are dropped and counted, never split. Analysis is by assigned arm (intention
to treat); impressions the recommender served from another arm are counted as a diagnostic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


class ReadoutError(ValueError):
    """The readout cannot run; the message names the missing data and the command that makes it."""


def read_table(lake: Path, table: str, columns: list[str]) -> pd.DataFrame:
    """One lake table (all date partitions), deduplicated by event_id; empty frame when absent."""
    import pyarrow.dataset as ds

    folder = Path(lake) / table
    if not folder.exists() or not any(folder.glob("date=*/part-*.parquet")):
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    t = ds.dataset(folder, format="parquet", partitioning="hive").to_table(columns=[*columns, "event_id"])
    df = t.to_pandas()
    return df.drop_duplicates("event_id").drop(columns="event_id").reset_index(drop=True)


@dataclass
class ExperimentEvents:
    experiment: str
    exposed: pd.DataFrame  # user_id, arm, t0: one row per user
    impressions: pd.DataFrame  # user_id, ts, request_id, n_items, served
    clicks: pd.DataFrame  # user_id, ts, request_id
    activity: pd.DataFrame  # user_id, ts: every interaction (pre-period source)
    conflicting_users: int  # exposed to more than one arm; dropped


def _utc(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, utc=True)


def load_events(lake: Path, experiment: str, base_interactions: Path | None = None) -> ExperimentEvents:
    exp = read_table(lake, "exposures", ["user_id", "event_timestamp", "experiment", "variant"])
    exp = exp[exp["experiment"] == experiment]
    if exp.empty:
        raise ReadoutError(f"no exposures of experiment {experiment!r} in {lake}/exposures: run the assignment "
                           "service (`make stack`) and traffic that asks it (`make simulate`), with the stream "
                           "processor writing the lake")
    exp = exp.assign(ts=_utc(exp["event_timestamp"]))
    arms = exp.groupby("user_id")["variant"].nunique()
    conflicting = set(arms[arms > 1].index)
    first = (exp[~exp["user_id"].isin(conflicting)].sort_values("ts").groupby("user_id", as_index=False)
             .agg(arm=("variant", "first"), t0=("ts", "first")))
    imp = read_table(lake, "impressions", ["user_id", "event_timestamp", "request_id", "items", "variant"])
    imp = pd.DataFrame({"user_id": imp["user_id"].astype("int64"), "ts": _utc(imp["event_timestamp"]),
                        "request_id": imp["request_id"], "n_items": imp["items"].map(len).astype("int64"),
                        "served": imp["variant"]})
    inter = read_table(lake, "interactions", ["user_id", "event_timestamp", "action", "request_id"])
    inter = inter.assign(user_id=inter["user_id"].astype("int64"), ts=_utc(inter["event_timestamp"]))
    clicks = inter[(inter["action"] == "click") & inter["request_id"].notna()][["user_id", "ts", "request_id"]]
    activity = [inter[["user_id", "ts"]]]
    if base_interactions is not None and Path(base_interactions).exists():
        base = pd.read_parquet(base_interactions, columns=["user_id", "event_timestamp"])
        activity.append(pd.DataFrame({"user_id": base["user_id"].astype("int64"),
                                      "ts": _utc(base["event_timestamp"])}))
    return ExperimentEvents(experiment, first, imp, clicks.reset_index(drop=True),
                            pd.concat(activity, ignore_index=True), len(conflicting))


def user_table(ev: ExperimentEvents, until: pd.Timestamp | None = None) -> pd.DataFrame:
    """Per exposed user (first exposure <= until): arm, impressions, lists, clicks, pre, converted."""
    users = ev.exposed if until is None else ev.exposed[ev.exposed["t0"] <= until]
    imp = ev.impressions.merge(users[["user_id", "arm", "t0"]], on="user_id")
    imp = imp[(imp["ts"] >= imp["t0"]) & ((imp["ts"] <= until) if until is not None else True)]
    clk = ev.clicks[ev.clicks["request_id"].isin(imp["request_id"])]
    if until is not None:
        clk = clk[clk["ts"] <= until]
    act = ev.activity.merge(users[["user_id", "t0"]], on="user_id")
    pre = act[act["ts"] < act["t0"]].groupby("user_id").size()
    out = users[["user_id", "arm", "t0"]].set_index("user_id")
    out["impressions"] = imp.groupby("user_id")["n_items"].sum()
    out["lists"] = imp.groupby("user_id").size()
    out["mismatched_lists"] = imp[imp["served"] != imp["arm"]].groupby("user_id").size()
    out["clicks"] = clk.groupby("user_id").size()
    out["pre"] = pre
    for c in ("impressions", "lists", "mismatched_lists", "clicks", "pre"):
        out[c] = out[c].fillna(0).astype("int64")
    out["converted"] = out["clicks"] > 0
    return out.reset_index()


def look_times(ev: ExperimentEvents, looks: int) -> list[pd.Timestamp]:
    """`looks` equally spaced cut-offs from the first exposure to the last event of the experiment."""
    start = ev.exposed["t0"].min()
    ends = [ev.exposed["t0"].max()]
    for df in (ev.impressions, ev.clicks):
        mine = df[df["user_id"].isin(ev.exposed["user_id"])]
        if not mine.empty:
            ends.append(mine["ts"].max())
    end = max(ends)
    if end <= start:
        return [end]
    return [start + (end - start) * f for f in np.linspace(1 / looks, 1.0, looks)]
