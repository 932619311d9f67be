"""Which interactions a run learns from: the fixed benchmark protocol or the rolling loop retrain.

    fixed   (default; TRAIN_PROTOCOL=fixed)
        base MovieLens log ------------------------------------------> temporal 80/10/10 split
    rolling (`make train ARGS="--protocol rolling"`; the drift monitor's retrain)
        base rows before the release cut  +  lake interactions (dedup by event_id, re-timed)
        -----------------------------------------------------------> the same split over the combined
                                                                       log: the newest window held out

**fixed** is the benchmark behind README's quality table and the model-quality test. It never opens
the lake: the simulator's clicks replay the held-out ratings of this very split, so letting them in
would leak the test period into training.

**rolling** is the retrain inside the loop: everything the running system has observed.
- base: the base rows before the fixed split's test cut, the *release cut* (what the served model was
  trained and released on). The base ratings after it are the future the simulator replays; the
  system sees them only as the events the simulator sends.
- live: every row of `<lake>/interactions/date=*/part-*.parquet` (services/stream writes them),
  deduplicated by `event_id`, only those before `window_end` (wall time) when one is given. Rows whose
  user or item is missing from the base users/items tables are dropped and counted: the model's
  vocabularies and the profile features come from those tables (the `new_users` drift scenario's
  users are therefore not learned; a known gap).
- the training signal: every interaction, click or rating, is one positive (user, item, time) label
  for the two-tower and the baselines, and counts in every count feature (u_cnt_*, i_cnt_*,
  i_pop_decayed, last_items). A click carries no explicit rating, so its `rating` is NaN and it is
  left out of the one rating feature, u_mean_rating_30d; a `rating` event keeps its rating (1..5,
  else dropped and counted) exactly like a MovieLens row.
- one timeline: live events carry wall-clock times (now), the base ends in 1998. The feature tables
  are daily snapshots over the whole span, so a gap of decades would cost ~10^4 empty days per user
  and item; the live events are therefore translated by one constant so that the first lands on the
  release cut (their order and the gaps between them unchanged; `live_time_shift_us` records it).
  Live events that already start at or before the cut are not moved.
- the split: `temporal_split` over the combined log with the run's fractions, so the newest 10 % is
  the test window and the 10 % before it validation; the cuts roll forward as events arrive. Its
  metrics are therefore not comparable with the fixed protocol's table, and every metrics.json,
  comparison.json and results.md carries the `protocol` that produced it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from minirec.pipeline.context import PipelineError, read_json

if TYPE_CHECKING:
    from minirec.pipeline.context import RunContext

PROTOCOLS = ("fixed", "rolling")
LAKE_COLUMNS = ["event_id", "user_id", "item_id", "rating", "event_timestamp", "action"]


class ProtocolError(PipelineError):
    """The protocol cannot assemble its data (unknown name, no live events); says what to do."""


def read_lake_interactions(lake: Path) -> pd.DataFrame:
    """Every interaction row in the lake (LAKE_COLUMNS), unsorted; empty frame when there is none.

    Hidden names (".part-...tmp", the writer's temp files) do not match `part-*`."""
    files = sorted((Path(lake) / "interactions").glob("date=*/part-*.parquet"))
    if not files:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
            LAKE_COLUMNS, ("object", "int64", "int64", "float32", "datetime64[us, UTC]", "object"), strict=True)})
    return pd.concat([pq.read_table(f, columns=LAKE_COLUMNS).to_pandas() for f in files], ignore_index=True)


def release_cut_of(base: pd.DataFrame, valid_frac: float, test_frac: float) -> pd.Timestamp:
    """The fixed split's test cut (the start of the period the simulator replays)."""
    from minirec.train.split import temporal_split

    return temporal_split(base, valid_frac, test_frac).cut_test


def live_events(lake: Path, users: pd.DataFrame, items: pd.DataFrame,
                window_end: str | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Lake interactions as training rows (user_id, item_id, rating, event_timestamp, action), wall time.

    Returns (rows, counts); counts say what was read, de-duplicated and dropped and why."""
    raw = read_lake_interactions(lake)
    ev = raw.drop_duplicates("event_id", keep="first")
    counts: dict[str, Any] = {"lake_rows": int(len(raw)), "duplicates": int(len(raw) - len(ev))}
    if window_end is not None:
        ev = ev[ev["event_timestamp"] < pd.Timestamp(window_end)]
    is_rating = ev["action"].eq("rating").to_numpy()
    bad = {
        "unknown_user": ~ev["user_id"].isin(users["user_id"]).to_numpy(),
        "unknown_item": ~ev["item_id"].isin(items["item_id"]).to_numpy(),
        "bad_rating": is_rating & ~ev["rating"].between(1, 5).to_numpy(),
        "unknown_action": ~ev["action"].isin(["click", "rating"]).to_numpy(),
    }
    drop = np.zeros(len(ev), dtype=bool)
    for mask in bad.values():
        drop |= mask
    counts["dropped"] = {k: int(v.sum()) for k, v in bad.items()}
    ev = ev[~drop]
    rows = pd.DataFrame({
        "user_id": ev["user_id"].astype("int64").to_numpy(),
        "item_id": ev["item_id"].astype("int64").to_numpy(),
        # a click is an implicit positive with no explicit rating (see the module doc)
        "rating": ev["rating"].where(ev["action"].eq("rating")).astype("float32").to_numpy(),
        "event_timestamp": ev["event_timestamp"].to_numpy(),
        "action": ev["action"].astype(str).to_numpy(),
    })
    rows["event_timestamp"] = pd.to_datetime(rows["event_timestamp"], utc=True).astype("datetime64[us, UTC]")
    counts["clicks"] = int((rows["action"] == "click").sum())
    counts["ratings"] = int((rows["action"] == "rating").sum())
    return rows, counts


def assemble(protocol: str, base: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame, lake: Path | None,
             *, window_end: str | None = None, valid_frac: float = 0.1,
             test_frac: float = 0.1) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The interactions a run trains and evaluates on, and a record of how they were assembled.

    base: the base log (user_id, item_id, rating, event_timestamp), already cut at window_end.
    fixed returns `base` itself (the lake is not read); rolling returns base before the release cut
    plus the live events (columns `action` and `source` added), oldest first."""
    if protocol not in PROTOCOLS:
        raise ProtocolError(f"unknown training protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    if protocol == "fixed":
        return base, {"protocol": "fixed", "base_rows": int(len(base)), "live_rows": 0, "lake": None}
    if lake is None:
        raise ProtocolError("the rolling protocol needs the event lake (STREAM_LAKE_DIR)")
    cut = release_cut_of(base, valid_frac, test_frac)
    hist = base[base["event_timestamp"] < cut].assign(action="rating", source="base")
    live, counts = live_events(lake, users, items, window_end)
    if len(live) == 0:
        raise ProtocolError(f"the rolling protocol found no usable interaction in {lake} "
                            f"({counts}); run the stream processor and the simulator first "
                            "(`make stack`, `make simulate`), or train with --protocol fixed")
    first = live["event_timestamp"].min()
    shift = max(first - cut, pd.Timedelta(0))  # constant translation of the live events onto the base timeline
    live = live.assign(event_timestamp=live["event_timestamp"] - shift, source="lake")
    both = pd.concat([hist, live], ignore_index=True)
    both["rating"] = both["rating"].astype("float32")
    both = both.sort_values("event_timestamp", kind="stable").reset_index(drop=True)
    info = {"protocol": "rolling", "lake": str(lake), "release_cut": cut.isoformat(), "base_rows": int(len(hist)),
            "live_rows": int(len(live)), "live_time_shift_s": shift.total_seconds(),
            "live_time_shift_us": int(shift // pd.Timedelta(microseconds=1)),  # exact (a float of seconds is not)
            "live_wall_start": first.isoformat(), "live_wall_end": (live["event_timestamp"].max() + shift).isoformat(),
            **{f"live_{k}": v for k, v in counts.items()}}
    return both, info


def for_run(ctx: RunContext, base: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, dict]:
    """assemble() with the run's protocol, lake, window and fractions."""
    return assemble(ctx.protocol, base, tables["users"], tables["items"], ctx.lake_dir, window_end=ctx.window_end,
                    valid_frac=ctx.valid_frac, test_frac=ctx.test_frac)


def run_protocol(ctx: RunContext) -> str:
    """The protocol validate_data recorded for this run (so a single rerun step cannot mislabel it)."""
    return read_json(ctx.run_dir / "validate.json").get("protocol", "fixed")


def protocol_note(ctx: RunContext) -> str:
    """The first line of results.md: which protocol produced the numbers below it."""
    v = read_json(ctx.run_dir / "validate.json")
    if v.get("protocol", "fixed") == "fixed":
        return ("Protocol: **fixed**: the base MovieLens log only, global temporal 80/10/10 split "
                "(the benchmark; the event lake is not read).\n\n")
    return (f"Protocol: **rolling**: {v['base_rows']:,} base rows before the release cut {v['release_cut']} "
            f"plus {v['live_rows']:,} live interactions from the lake ({v['live_clicks']:,} clicks, "
            f"{v['live_ratings']:,} ratings; re-timed by -{v['live_time_shift_s']:.0f} s), newest "
            f"{ctx.test_frac:.0%} held out as test. Not comparable with the fixed protocol's table.\n\n")
