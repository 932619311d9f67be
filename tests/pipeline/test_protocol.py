"""Training protocols: the fixed benchmark never sees the lake; the rolling retrain learns from it.

The lake is written by the stream processor's own writer (services/stream/lake.py) into tmp_path.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from minirec.data.movielens import load
from minirec.events import Interaction
from minirec.pipeline.protocol import PROTOCOLS, ProtocolError, assemble, release_cut_of
from minirec.train.split import temporal_split
from services.stream.lake import LakeWriter

N_CLICKS, N_RATINGS = 40, 8


@pytest.fixture
def base_tables(synthetic_lake):
    return load(synthetic_lake)


def write_lake(root, tables, now: datetime) -> list[Interaction]:
    """Clicks and ratings of known users/items over the last 2 h of wall time, one unknown user,
    and a copied part (the same event_ids twice, as a botched compaction would leave them)."""
    rng = np.random.default_rng(3)
    users, items = tables["users"]["user_id"].to_numpy(), tables["items"]["item_id"].to_numpy()
    events = []
    for k in range(N_CLICKS + N_RATINGS):
        rating = k >= N_CLICKS
        events.append(Interaction(user_id=int(rng.choice(users)), item_id=int(rng.choice(items)),
                                  action="rating" if rating else "click", rating=4.0 if rating else None,
                                  position=None if rating else int(k % 10),
                                  event_time=now - timedelta(minutes=120 - 2 * k)))
    stranger = Interaction(user_id=10**6, item_id=int(items[0]), action="click", event_time=now)
    LakeWriter(root).write([*events, stranger])
    part = sorted((root / "interactions").glob("date=*/part-*.parquet"))[0]
    shutil.copy(part, part.with_name("part-9-copy.parquet"))
    return events


def test_fixed_ignores_the_lake_and_rolling_learns_from_it(base_tables, tmp_path):
    now = datetime.now(UTC)
    events = write_lake(tmp_path / "lake", base_tables, now)
    base, users, items = base_tables["interactions"], base_tables["users"], base_tables["items"]

    fixed, info = assemble("fixed", base, users, items, tmp_path / "lake")
    pd.testing.assert_frame_equal(fixed, base)  # exactly the base log: no lake row, no extra column
    assert info == {"protocol": "fixed", "base_rows": len(base), "live_rows": 0, "lake": None}
    assert fixed["event_timestamp"].max() < pd.Timestamp(now) - pd.Timedelta(days=365)

    rolling, info = assemble("rolling", base, users, items, tmp_path / "lake")
    cut = release_cut_of(base, 0.1, 0.1)
    live = rolling[rolling["source"] == "lake"]
    assert len(live) == info["live_rows"] == N_CLICKS + N_RATINGS
    assert info["live_duplicates"] > 0 and info["live_dropped"]["unknown_user"] == 1
    assert (info["live_clicks"], info["live_ratings"]) == (N_CLICKS, N_RATINGS)
    # the base part is the fixed split's train + valid periods; its held-out ratings are not there
    hist = rolling[rolling["source"] == "base"]
    assert len(hist) == int((base["event_timestamp"] < cut).sum()) and hist["event_timestamp"].max() < cut
    # click = implicit positive without a rating; a rating event keeps its rating
    assert live.loc[live["action"] == "click", "rating"].isna().all()
    assert (live.loc[live["action"] == "rating", "rating"] == 4.0).all()
    # re-timed onto the base timeline by one constant: the first lands on the cut, gaps unchanged
    wall = pd.to_datetime([e.event_time for e in events], utc=True)
    shift = pd.Timedelta(microseconds=info["live_time_shift_us"])
    assert live["event_timestamp"].min() == cut and shift == wall.min() - cut
    assert sorted(live["event_timestamp"] + shift) == sorted(wall)
    assert rolling["event_timestamp"].is_monotonic_increasing
    # the newest window is held out: every live event is in the rolling split's test period
    split = temporal_split(rolling, 0.1, 0.1)
    assert (split.test["source"] == "lake").sum() == len(live)
    assert not (split.train["source"] == "lake").any()


def test_rolling_respects_window_end_and_needs_live_events(base_tables, tmp_path):
    now = datetime.now(UTC)
    write_lake(tmp_path / "lake", base_tables, now)
    args = (base_tables["interactions"], base_tables["users"], base_tables["items"])
    _, info = assemble("rolling", *args, tmp_path / "lake", window_end=(now - timedelta(minutes=60)).isoformat())
    assert info["live_rows"] == 30  # events 2 min apart from now - 120 min: those before now - 60 min
    with pytest.raises(ProtocolError, match="no usable interaction"):
        assemble("rolling", *args, tmp_path / "empty_lake")
    with pytest.raises(ProtocolError, match="unknown training protocol 'weekly'"):
        assemble("weekly", *args, tmp_path / "lake")


def test_validate_data_records_the_protocol_and_writes_its_log(make_ctx, base_tables, tmp_path):
    from minirec import pipeline as P
    from minirec.pipeline.cli import PROTOCOLS as CLI_PROTOCOLS

    assert CLI_PROTOCOLS == PROTOCOLS
    write_lake(tmp_path / "lake", base_tables, datetime.now(UTC))
    for protocol in PROTOCOLS:
        ctx = make_ctx(run_id=protocol, protocol=protocol, lake_dir=tmp_path / "lake")
        P.validate_data(ctx)
        record = json.loads((ctx.run_dir / "validate.json").read_text())
        inter = pd.read_parquet(ctx.run_dir / "interactions.parquet")
        assert record["protocol"] == protocol and record["interactions"] == len(inter)
        if protocol == "fixed":
            assert len(inter) == len(base_tables["interactions"]) and "source" not in inter
        else:
            assert (inter["source"] == "lake").sum() == record["live_rows"] == N_CLICKS + N_RATINGS


def test_clicks_count_as_events_but_not_in_the_mean_rating(base_tables):
    from minirec.features.tables import build_user_aggregates

    t = pd.Timestamp("1998-01-01 12:00", tz="UTC")
    inter = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [1, 2, 3], "rating": [5.0, np.nan, 3.0],
                          "event_timestamp": [t, t + pd.Timedelta(hours=1), t + pd.Timedelta(hours=2)]})
    agg = build_user_aggregates(inter, base_tables["items"], np.array([1]))
    day_after = agg[agg["event_timestamp"] == pd.Timestamp("1998-01-02", tz="UTC")].iloc[0]
    assert day_after["u_cnt_30d"] == 3 and day_after["u_mean_rating_30d"] == pytest.approx(4.0)
