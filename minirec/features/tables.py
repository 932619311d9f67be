"""Offline feature tables for the Feast repo, derived from the event lake.

Pure pandas/numpy over the canonical tables (minirec.data.schema). Each
table carries `event_timestamp` = the moment its values became known, so the
point-in-time join in Feast never hands a label a value computed from events
at or after the label's time:

- user_profile, item_attributes: static, stamped at CATALOGUE_EPOCH.
- user_aggregates, item_popularity: daily snapshots at 00:00 UTC over events
  strictly before the snapshot time (at most one day stale).
- user_realtime: one row per (user, event second), the state right after the
  events of that second (what the stream processor pushes online).

Sizes: MovieLens-100K gives about 140k user_aggregates rows, 360k
item_popularity rows and 77k user_realtime rows; the dense (users x days)
arrays used here are fine at that scale, not at millions of users.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

CATALOGUE_EPOCH = pd.Timestamp("1990-01-01", tz="UTC")
DAY = pd.Timedelta(days=1)
# MovieLens genre vocabulary (the model's multi-hot order); unseen tags are ignored.
GENRES = ["Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
          "Thriller", "War", "Western", "unknown"]
AGE_EDGES = [18, 25, 35, 45, 50, 56]  # age_bucket = number of edges <= age (0..6), as in ML-1M
LAST_N = 20  # length of the recent-items list
POP_TAU_DAYS = 7.0  # decay constant of i_pop_decayed (e-folding time, days)

SCHEMAS: dict[str, pa.Schema] = {
    "user_profile": pa.schema([("user_id", pa.int64()), ("event_timestamp", pa.timestamp("us", tz="UTC")),
                               ("age_bucket", pa.int64()), ("gender", pa.string()),
                               ("occupation", pa.string())]),
    "user_aggregates": pa.schema([("user_id", pa.int64()), ("event_timestamp", pa.timestamp("us", tz="UTC")),
                                  ("u_cnt_7d", pa.int64()), ("u_cnt_30d", pa.int64()),
                                  ("u_cnt_all", pa.int64()), ("u_mean_rating_30d", pa.float32()),
                                  ("u_genre_share_90d", pa.list_(pa.float32()))]),
    "user_realtime": pa.schema([("user_id", pa.int64()), ("event_timestamp", pa.timestamp("us", tz="UTC")),
                                ("last_items", pa.list_(pa.int64())), ("u_cnt_1h", pa.int64()),
                                ("u_cnt_24h", pa.int64())]),
    "item_attributes": pa.schema([("item_id", pa.int64()), ("event_timestamp", pa.timestamp("us", tz="UTC")),
                                  ("genres", pa.list_(pa.string())), ("year", pa.int64())]),
    "item_popularity": pa.schema([("item_id", pa.int64()), ("event_timestamp", pa.timestamp("us", tz="UTC")),
                                  ("i_cnt_7d", pa.int64()), ("i_cnt_30d", pa.int64()),
                                  ("i_cnt_all", pa.int64()), ("i_pop_decayed", pa.float32())]),
}


class FeatureDataError(ValueError):
    """The lake cannot produce feature tables (empty, corrupt); the message says why."""


def age_bucket(age: np.ndarray) -> np.ndarray:
    """Ages (years) -> bucket ids 0..6."""
    return np.searchsorted(np.asarray(AGE_EDGES), np.asarray(age), side="right").astype(np.int64)


def genre_multi_hot(genres: list[list[str]] | pd.Series) -> np.ndarray:
    """Lists of genre tags -> (n, 19) float32 multi-hot in GENRES order."""
    index = {g: k for k, g in enumerate(GENRES)}
    out = np.zeros((len(genres), len(GENRES)), dtype=np.float32)
    for row, tags in enumerate(genres):
        for tag in tags if tags is not None else []:
            if tag in index:
                out[row, index[tag]] = 1.0
    return out


def snapshot_days(interactions: pd.DataFrame) -> pd.DatetimeIndex:
    """Snapshot times: every 00:00 UTC from the first event's day to the day after the last."""
    ts = interactions["event_timestamp"]
    return pd.date_range(ts.min().floor("D"), ts.max().floor("D") + DAY, freq="D")


def _day_index(ts: pd.Series, days: pd.DatetimeIndex) -> np.ndarray:
    """Index k of the day containing each timestamp (days[k] <= t < days[k+1])."""
    return (ts.values.astype("datetime64[us]") - days[0].to_datetime64()) // np.timedelta64(1, "D")


def _window(daily: np.ndarray, width: int) -> np.ndarray:
    """daily (n, D, ...) counts per day -> (n, D+1, ...) sums over the `width` days before each snapshot.

    Snapshot j covers days j-width .. j-1 (events strictly before days[j])."""
    c = np.concatenate([np.zeros_like(daily[:, :1]), np.cumsum(daily, axis=1)], axis=1)  # (n, D+1, ...)
    lagged = np.concatenate([np.zeros_like(c[:, :width]), c[:, :-width]], axis=1) if width < c.shape[1] \
        else np.zeros_like(c)
    return c - lagged


def build_user_profile(users: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": users["user_id"].astype("int64").values,
        "event_timestamp": CATALOGUE_EPOCH,
        "age_bucket": age_bucket(users["age"].values),
        "gender": users["gender"].astype(str).values,
        "occupation": users["occupation"].astype(str).values,
    })


def build_item_attributes(items: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "item_id": items["item_id"].astype("int64").values,
        "event_timestamp": CATALOGUE_EPOCH,
        "genres": [list(g) if g is not None else [] for g in items["genres"]],
        "year": items["year"].astype("Int64").fillna(0).astype("int64").values,
    })


def build_user_aggregates(inter: pd.DataFrame, items: pd.DataFrame, all_users: np.ndarray) -> pd.DataFrame:
    """Daily snapshots per user, from the first snapshot after the user's first event,
    plus a zero row at CATALOGUE_EPOCH for every user in `all_users`."""
    days = snapshot_days(inter)  # (D+1,) snapshot times; day k spans days[k]..days[k+1]
    n_days = len(days) - 1
    users = np.sort(inter["user_id"].unique())
    u_idx = np.searchsorted(users, inter["user_id"].values)
    d_idx = _day_index(inter["event_timestamp"], days)
    cnt = np.zeros((len(users), n_days), dtype=np.int64)
    np.add.at(cnt, (u_idx, d_idx), 1)
    # a click (the rolling protocol's lake rows) has no rating (NaN): it counts as an event, not in the mean
    rating = inter["rating"].values.astype(np.float64)
    rated = ~np.isnan(rating)
    rsum = np.zeros((len(users), n_days), dtype=np.float64)
    np.add.at(rsum, (u_idx[rated], d_idx[rated]), rating[rated])
    rcnt = np.zeros((len(users), n_days), dtype=np.int64)
    np.add.at(rcnt, (u_idx[rated], d_idx[rated]), 1)
    mh = genre_multi_hot(items.set_index("item_id").reindex(inter["item_id"].values)["genres"].tolist())
    gen = np.zeros((len(users), n_days, len(GENRES)), dtype=np.float32)
    np.add.at(gen, (u_idx, d_idx), mh)

    c7, c30, call = _window(cnt, 7), _window(cnt, 30), _window(cnt, n_days + 1)  # (U, D+1)
    r30, rc30 = _window(rsum, 30), _window(rcnt, 30)
    g90 = _window(gen, 90)  # (U, D+1, 19)
    mean30 = np.where(rc30 > 0, r30 / np.maximum(rc30, 1), 0.0).astype(np.float32)
    share = g90 / np.maximum(g90.sum(axis=2, keepdims=True), 1e-9)

    first = np.full(len(users), n_days, dtype=np.int64)
    np.minimum.at(first, u_idx, d_idx)
    rows_u, rows_d = np.nonzero(np.arange(n_days + 1)[None, :] > first[:, None])  # snapshots after first event
    snapshots = pd.DataFrame({
        "user_id": users[rows_u].astype(np.int64),
        "event_timestamp": days[rows_d],
        "u_cnt_7d": c7[rows_u, rows_d],
        "u_cnt_30d": c30[rows_u, rows_d],
        "u_cnt_all": call[rows_u, rows_d],
        "u_mean_rating_30d": mean30[rows_u, rows_d],
        "u_genre_share_90d": list(share[rows_u, rows_d].astype(np.float32)),
    })
    return pd.concat([_epoch_rows(all_users, {
        "u_cnt_7d": 0, "u_cnt_30d": 0, "u_cnt_all": 0, "u_mean_rating_30d": np.float32(0.0),
        "u_genre_share_90d": lambda: [0.0] * len(GENRES)}), snapshots], ignore_index=True)


def _epoch_rows(user_ids: np.ndarray, values: dict) -> pd.DataFrame:
    """A 'no activity yet' row per user at CATALOGUE_EPOCH, so a point-in-time lookup
    before a user's first event finds zeros (not a missing row) offline and online."""
    n = len(user_ids)
    cols = {k: ([v() for _ in range(n)] if callable(v) else [v] * n) for k, v in values.items()}
    return pd.DataFrame({"user_id": np.asarray(user_ids, dtype=np.int64),
                         "event_timestamp": CATALOGUE_EPOCH, **cols})


def build_item_popularity(inter: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Daily snapshots for every catalogue item (zeros before its first rating)."""
    days = snapshot_days(inter)
    n_days = len(days) - 1
    item_ids = np.sort(items["item_id"].astype("int64").unique())
    known = np.isin(inter["item_id"].values, item_ids)
    ev = inter[known]
    i_idx = np.searchsorted(item_ids, ev["item_id"].values)
    d_idx = _day_index(ev["event_timestamp"], days)
    cnt = np.zeros((len(item_ids), n_days), dtype=np.int64)
    np.add.at(cnt, (i_idx, d_idx), 1)
    # decayed popularity at snapshot j: sum over events t < days[j] of exp(-(days[j]-t)/tau)
    age_at_next = (days[d_idx + 1].values - ev["event_timestamp"].values.astype("datetime64[ns]")) \
        / np.timedelta64(1, "D")  # (E,) days from event to the next snapshot
    contrib = np.zeros((len(item_ids), n_days), dtype=np.float64)
    np.add.at(contrib, (i_idx, d_idx), np.exp(-age_at_next / POP_TAU_DAYS))
    decay = np.exp(-1.0 / POP_TAU_DAYS)
    pop = np.zeros((len(item_ids), n_days + 1), dtype=np.float64)
    for j in range(1, n_days + 1):
        pop[:, j] = pop[:, j - 1] * decay + contrib[:, j - 1]
    c7, c30, call = _window(cnt, 7), _window(cnt, 30), _window(cnt, n_days + 1)
    n_snap = n_days + 1
    return pd.DataFrame({
        "item_id": np.repeat(item_ids, n_snap),
        "event_timestamp": np.tile(days.values, len(item_ids)),
        "i_cnt_7d": c7.ravel(),
        "i_cnt_30d": c30.ravel(),
        "i_cnt_all": call.ravel(),
        "i_pop_decayed": pop.ravel().astype(np.float32),
    }).assign(event_timestamp=lambda f: pd.to_datetime(f["event_timestamp"], utc=True))


def build_user_realtime(inter: pd.DataFrame, all_users: np.ndarray) -> pd.DataFrame:
    """One row per (user, event second): last LAST_N distinct items (newest first), 1 h / 24 h counts,
    plus an empty row at CATALOGUE_EPOCH for every user in `all_users`.

    Counts cover (t - window, t], i.e. they include the events of second t."""
    ev = inter.sort_values(["user_id", "event_timestamp", "item_id"], kind="stable")
    out_user, out_ts, out_last, out_1h, out_24h = [], [], [], [], []
    for uid, g in ev.groupby("user_id", sort=True):
        ts = g["event_timestamp"].values.astype("datetime64[us]").astype(np.int64)  # (n,) microseconds
        it = g["item_id"].values
        # group boundaries: last index of each distinct second
        ends = np.flatnonzero(np.r_[ts[1:] != ts[:-1], True])
        c1h = ends + 1 - np.searchsorted(ts, ts[ends] - 3_600_000_000, side="right")
        c24h = ends + 1 - np.searchsorted(ts, ts[ends] - 86_400_000_000, side="right")
        recent: list[int] = []
        start = 0
        for end in ends:
            for item in it[start:end + 1]:
                if item in recent:
                    recent.remove(item)
                recent.insert(0, int(item))
            del recent[LAST_N:]
            start = end + 1
            out_last.append(list(recent))
        out_user.extend([uid] * len(ends))
        out_ts.append(ts[ends])
        out_1h.append(c1h)
        out_24h.append(c24h)
    events = pd.DataFrame({
        "user_id": np.asarray(out_user, dtype=np.int64),
        "event_timestamp": pd.to_datetime(np.concatenate(out_ts), unit="us", utc=True),
        "last_items": out_last,
        "u_cnt_1h": np.concatenate(out_1h).astype(np.int64),
        "u_cnt_24h": np.concatenate(out_24h).astype(np.int64),
    })
    empty = _epoch_rows(all_users, {"last_items": lambda: [], "u_cnt_1h": 0, "u_cnt_24h": 0})
    return pd.concat([empty, events], ignore_index=True)


def build_feature_tables(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Lake tables {users, items, interactions} -> the five Feast source tables."""
    inter, items, users = tables["interactions"], tables["items"], tables["users"]
    if len(inter) == 0:
        raise FeatureDataError("the interaction log is empty: no feature can be computed; run `make data`")
    if inter["event_timestamp"].isna().any():
        raise FeatureDataError("interactions with a null event_timestamp: the lake is corrupt; run `make data`")
    all_users = np.union1d(users["user_id"].values, inter["user_id"].values).astype(np.int64)
    return {
        "user_profile": build_user_profile(users),
        "user_aggregates": build_user_aggregates(inter, items, all_users),
        "user_realtime": build_user_realtime(inter, all_users),
        "item_attributes": build_item_attributes(items),
        "item_popularity": build_item_popularity(inter, items),
    }


def write_feature_tables(frames: dict[str, pd.DataFrame], out_dir: Path) -> dict[str, int]:
    """Write each table as `out_dir/<name>.parquet` (atomic per file); returns row counts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, frame in frames.items():
        if len(frame) == 0:
            raise FeatureDataError(f"feature table {name} has no rows; nothing was written for it")
        table = pa.Table.from_pandas(frame[SCHEMAS[name].names], schema=SCHEMAS[name], preserve_index=False)
        tmp = out_dir / f".{name}.parquet.tmp"
        pq.write_table(table, tmp)
        tmp.replace(out_dir / f"{name}.parquet")
        counts[name] = table.num_rows
    return counts
