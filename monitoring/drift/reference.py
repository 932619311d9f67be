"""A drift reference built from the lake without a trained model (tests, and `make drift-eval`
when `make train` has not run): the same two files export_reference writes.

    features.parquet  training-period labels (temporal split, 80 %) with the user features as of
                      1 µs before each label (profile; daily aggregates; per-second real-time state),
                      the point-in-time rule of minirec.features.training_set.label_frame, done with
                      pandas merge_asof over the tables of minirec.features.tables
    scores.parquet    per user top-1 and mean top-10 of a stand-in scorer: fixed random 16-d user and
                      item vectors plus 0.5 * log1p(training count), the model's score shape; it is not
                      the model, so the files say so in `stand_in.json`
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

JUST_BEFORE = pd.Timedelta(microseconds=1)


def _asof(labels: pd.DataFrame, table: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    left = labels.assign(_t=pd.to_datetime(labels["label_timestamp"], utc=True).astype("datetime64[ns, UTC]")
                         - JUST_BEFORE).sort_values("_t")
    right = table[["user_id", "event_timestamp", *cols]].copy()
    right["event_timestamp"] = pd.to_datetime(right["event_timestamp"], utc=True).astype("datetime64[ns, UTC]")
    right = right.sort_values("event_timestamp")
    out = pd.merge_asof(left, right, left_on="_t", right_on="event_timestamp", by="user_id", direction="backward")
    return out.drop(columns=["_t", "event_timestamp"])


def build_reference(data_dir: Path, out_dir: Path, *, sample: int = 20_000, seed: int = 0) -> Path:
    from minirec.features.tables import build_feature_tables
    from minirec.model.two_tower import COUNT_FEATURES
    from minirec.train.split import temporal_split

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    tables = {n: pd.read_parquet(data_dir / f"{n}.parquet") for n in ("users", "items", "interactions")}
    ft = build_feature_tables(tables)
    train = temporal_split(tables["interactions"]).train
    labels = train[["user_id", "item_id", "event_timestamp"]].rename(columns={"event_timestamp": "label_timestamp"})
    labels = labels.sample(n=min(sample, len(labels)), random_state=seed).reset_index(drop=True)
    prof = ft["user_profile"].drop(columns="event_timestamp").drop_duplicates("user_id")
    feats = labels.merge(prof, on="user_id", how="left")
    feats = _asof(feats, ft["user_aggregates"], ["u_cnt_7d", "u_cnt_30d", "u_cnt_all", "u_mean_rating_30d"])
    feats = _asof(feats, ft["user_realtime"], ["last_items", "u_cnt_1h", "u_cnt_24h"])
    feats["n_last_items"] = feats["last_items"].map(lambda v: 0 if not isinstance(v, list | np.ndarray) else len(v))
    feats = feats[["user_id", "item_id", "label_timestamp", "age_bucket", "gender", "occupation", *COUNT_FEATURES,
                   "u_mean_rating_30d", "n_last_items"]]
    for c in COUNT_FEATURES:
        feats[c] = feats[c].fillna(0).astype(np.int64)
    feats["u_mean_rating_30d"] = feats["u_mean_rating_30d"].fillna(0.0)

    rng = np.random.default_rng(seed)
    users = np.sort(tables["users"]["user_id"].unique())
    items = np.sort(tables["items"]["item_id"].unique())
    pop = np.log1p(train["item_id"].value_counts().reindex(items, fill_value=0).to_numpy(float))
    s = rng.normal(size=(len(users), 16)) @ rng.normal(size=(16, len(items))) / 4.0 + 0.5 * pop  # (U, M)
    top = -np.sort(-s, axis=1)[:, :10]
    scores = pd.DataFrame({"user_id": users, "top1_score": top[:, 0], "top10_mean_score": top.mean(axis=1)})

    out_dir.mkdir(parents=True, exist_ok=True)
    feats.to_parquet(out_dir / "features.parquet", index=False)
    scores.to_parquet(out_dir / "scores.parquet", index=False)
    (out_dir / "stand_in.json").write_text(json.dumps({"built_from": str(data_dir), "scorer": "random 16-d + pop",
                                                       "rows": len(feats), "seed": seed}))
    return out_dir
