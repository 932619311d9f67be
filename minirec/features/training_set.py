"""Training and evaluation frames from the feature store (point-in-time).

- training labels: every train-period interaction (u, i, t); the user-side
  features are looked up at t - 1 µs, so the label's own event (and any other
  event in the same second) is never part of its features;
- evaluation: user features and item features at cut - 1 µs for the
  validation and test cuts (what a server would have read just before the
  period began).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from minirec.features.store import (
    ITEM_SERVICE,
    USER_SERVICE,
    historical_features,
    point_in_time_join,
)

if TYPE_CHECKING:
    from feast import FeatureStore

JUST_BEFORE = pd.Timedelta(microseconds=1)
# pandas: merge_asof in this process (default); feast: Feast's file offline store (slow, the reference);
# spark: the same as-of join on PySpark (minirec/features/spark_join.py; where: SPARK_MASTER)
Engine = Literal["pandas", "feast", "spark"]
ENGINES: tuple[Engine, ...] = ("pandas", "feast", "spark")


def _join(store: FeatureStore, entity_df: pd.DataFrame, service: str, engine: Engine) -> pd.DataFrame:
    if engine == "feast":
        return historical_features(store, entity_df, service)
    if engine == "spark":
        from minirec.features.spark_join import point_in_time_join_spark

        return point_in_time_join_spark(store, entity_df, service)
    if engine != "pandas":
        raise ValueError(f"unknown offline engine {engine!r}; one of {', '.join(ENGINES)}")
    return point_in_time_join(store, entity_df, service)


def label_frame(store: FeatureStore, labels: pd.DataFrame, engine: Engine = "pandas") -> pd.DataFrame:
    """labels (user_id, item_id, event_timestamp) -> the same rows plus user features as of t - 1 µs."""
    if len(labels) == 0:
        raise ValueError("no training labels: the training window is empty")
    keys = labels[["user_id", "event_timestamp"]].drop_duplicates().reset_index(drop=True)
    ent = pd.DataFrame({"user_id": keys["user_id"].values,
                        "event_timestamp": keys["event_timestamp"] - JUST_BEFORE})
    feats = _join(store, ent, USER_SERVICE, engine)
    feats["label_timestamp"] = keys["event_timestamp"].reset_index(drop=True)
    feats = feats.rename(columns={"event_timestamp": "feature_timestamp"})
    out = labels[["user_id", "item_id", "event_timestamp"]].rename(columns={"event_timestamp": "label_timestamp"})
    return out.merge(feats, on=["user_id", "label_timestamp"], how="left", validate="many_to_one")


def users_at(store: FeatureStore, user_ids: np.ndarray, at: pd.Timestamp, engine: Engine = "pandas") -> pd.DataFrame:
    """User features for `user_ids` as of `at - 1 µs`, in the given order."""
    ent = pd.DataFrame({"user_id": np.asarray(user_ids, dtype=np.int64), "event_timestamp": at - JUST_BEFORE})
    return _join(store, ent, USER_SERVICE, engine)


def items_at(store: FeatureStore, item_ids: np.ndarray, at: pd.Timestamp, engine: Engine = "pandas") -> pd.DataFrame:
    """Item features (attributes, popularity) for `item_ids` as of `at - 1 µs`, in order."""
    ent = pd.DataFrame({"item_id": np.asarray(item_ids, dtype=np.int64), "event_timestamp": at - JUST_BEFORE})
    return _join(store, ent, ITEM_SERVICE, engine)
