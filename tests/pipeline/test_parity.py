"""Training/serving parity: offline features at T equal online features after materialising at T."""

from __future__ import annotations

import numpy as np
import pandas as pd

from minirec.data.movielens import load
from minirec.features.store import (
    ITEM_SERVICE,
    USER_SERVICE,
    apply_repo,
    copy_repo,
    materialize,
    online_features,
    open_store,
)
from minirec.features.tables import build_feature_tables, write_feature_tables
from minirec.features.training_set import items_at, users_at


def _norm(v):
    if v is None or (isinstance(v, (float, np.floating)) and np.isnan(v)):
        return None
    if isinstance(v, (list, np.ndarray)):
        return [_norm(x) for x in v]
    if isinstance(v, (float, np.floating, np.integer, int)):
        return round(float(v), 4)
    return v


def test_offline_at_t_equals_online_after_materialize_at_t(tmp_path, synthetic_lake, redis_server):
    tables = load(synthetic_lake)
    repo = copy_repo(tmp_path / "feature_repo")
    write_feature_tables(build_feature_tables(tables), repo / "data")
    store = open_store(repo, project="parity", redis_host=redis_server.host, redis_port=redis_server.port)
    apply_repo(store, repo)
    ts = tables["interactions"]["event_timestamp"]
    at = ts.quantile(0.7).floor("s") + pd.Timedelta(minutes=7, seconds=3)  # mid-log, off any snapshot
    materialize(store, end=at.to_pydatetime())

    rng = np.random.default_rng(0)
    users = np.sort(rng.choice(tables["users"]["user_id"].values, 25, replace=False))
    offline = users_at(store, users, at + pd.Timedelta(microseconds=1))  # values with ts <= at
    online = online_features(store, USER_SERVICE, "user_id", users)
    assert len(online) == len(users)
    active = 0
    for col in offline.columns.drop(["user_id", "event_timestamp"]):
        assert [_norm(v) for v in offline[col]] == [_norm(v) for v in online[col]], col
    active = int((offline["u_cnt_all"] > 0).sum())
    assert active >= 5  # the sample includes users with history, not only empty rows

    items = tables["items"]["item_id"].values[:30]
    off_i = items_at(store, items, at + pd.Timedelta(microseconds=1))
    on_i = online_features(store, ITEM_SERVICE, "item_id", items)
    for col in ("i_pop_decayed", "i_cnt_7d", "year", "genres"):
        assert [_norm(v) for v in off_i[col]] == [_norm(v) for v in on_i[col]], col
    assert (off_i["i_cnt_all"] > 0).sum() >= 10
