"""Point-in-time correctness of the training rows (Feast's own join and ours)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from minirec.features.store import (
    USER_SERVICE,
    apply_repo,
    copy_repo,
    historical_features,
    open_store,
    point_in_time_join,
)
from minirec.features.tables import build_feature_tables, write_feature_tables
from minirec.features.training_set import label_frame

T = pd.Timestamp


def _lake() -> dict[str, pd.DataFrame]:
    """User 1 rates item 10 on Jan 1 and item 20 on Jan 3 10:00, then item 30 on Jan 5."""
    inter = pd.DataFrame({
        "user_id": [1, 1, 1, 2],
        "item_id": [10, 20, 30, 10],
        "rating": np.float32([5, 3, 4, 2]),
        "event_timestamp": pd.to_datetime(["2024-01-01 09:00", "2024-01-03 10:00", "2024-01-05 08:00",
                                           "2024-01-02 12:00"], utc=True),
    })
    items = pd.DataFrame({"item_id": [10, 20, 30], "title": ["a", "b", "c"],
                          "year": pd.array([1995, 1990, None], dtype="Int16"),
                          "genres": [["Drama"], ["Comedy"], ["Drama", "War"]]})
    users = pd.DataFrame({"user_id": [1, 2], "age": np.int16([30, 60]), "gender": ["F", "M"],
                          "occupation": ["writer", "other"], "zip_code": ["1", "2"]})
    return {"interactions": inter, "items": items, "users": users}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("pit") / "feature_repo")
    write_feature_tables(build_feature_tables(_lake()), repo / "data")
    st = open_store(repo, project="pit", redis_port=1)  # offline only: Redis is never contacted
    apply_repo(st, repo)
    return st


@pytest.mark.parametrize("engine", ["feast", "pandas"])
def test_training_row_carries_the_value_before_the_label(store, engine):
    labels = _lake()["interactions"].iloc[[1, 2]]  # item 20 at Jan 3 10:00, item 30 at Jan 5 08:00
    rows = label_frame(store, labels, engine=engine).set_index("item_id")
    # the label's own event changes last_items at Jan 3 10:00: the row must not see it
    assert list(rows.loc[20, "last_items"]) == [10]
    assert rows.loc[20, "u_cnt_all"] == 1  # snapshot of Jan 3 00:00 (only the Jan 1 rating)
    assert rows.loc[20, "u_mean_rating_30d"] == pytest.approx(5.0)
    # two days later both earlier ratings are visible, the Jan 5 one is not
    assert list(rows.loc[30, "last_items"]) == [20, 10]
    assert rows.loc[30, "u_cnt_all"] == 2
    assert rows.loc[30, "u_mean_rating_30d"] == pytest.approx(4.0)


def test_before_any_event_the_row_reads_zeros_not_the_future(store):
    ent = pd.DataFrame({"user_id": [1], "event_timestamp": [T("2024-01-01 08:59", tz="UTC")]})
    row = point_in_time_join(store, ent, USER_SERVICE).iloc[0]
    assert list(row["last_items"]) == [] and row["u_cnt_all"] == 0 and row["occupation"] == "writer"


def _norm(v):
    if isinstance(v, (list, np.ndarray)):
        return [round(float(x), 5) for x in v]
    if isinstance(v, (float, np.floating)):
        return round(float(v), 5)
    return v


def test_fast_join_equals_feast_on_a_sample(store):
    ts = pd.to_datetime(["2024-01-01 09:00:00", "2024-01-02 00:00:00", "2024-01-03 09:59:59", "2024-01-03 10:00:00",
                         "2024-01-04 00:00:01", "2024-01-09 00:00:00"], utc=True)
    ent = pd.DataFrame({"user_id": [1, 1, 1, 1, 2, 2], "event_timestamp": ts})
    ours = point_in_time_join(store, ent, USER_SERVICE)
    feast = historical_features(store, ent, USER_SERVICE)
    assert list(ours.columns) == list(feast.columns)
    for col in ours.columns.drop("event_timestamp"):
        assert [_norm(v) for v in ours[col]] == [_norm(v) for v in feast[col]], col
