"""The Spark offline engine gives the same training frames as the pandas engine, row for row.

Comparison (`assert_same_frame`): same columns in the same order, same pandas
dtypes, same rows in the same order (the entity order both engines promise).
Cell values are compared exactly after one documented normalisation: a
missing value is None whether an engine wrote None or NaN (pandas' merge_asof
leaves NaN in object columns, Spark's Arrow conversion None), and a list
feature is compared as a Python list. Floats are not rounded: both engines
pass the stored float32 values through untouched.

One SparkSession (local[2]) for the module; its JVM start takes 5-30 s on
this shared machine, hence `slow`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from minirec.features import spark_join
from minirec.features.store import USER_SERVICE, apply_repo, copy_repo, open_store
from minirec.features.tables import build_feature_tables, write_feature_tables
from minirec.features.training_set import items_at, label_frame, users_at
from tests.pipeline.test_point_in_time import _lake

T = pd.Timestamp
UNKNOWN_ID = 10**9  # no feature row has this key


def _cell(v):
    if isinstance(v, (list, np.ndarray)):
        return [x.item() if isinstance(x, np.generic) else x for x in v]
    if v is None or (np.isscalar(v) and pd.isna(v)):
        return None
    return v.item() if isinstance(v, np.generic) else v


def assert_same_frame(spark: pd.DataFrame, pandas: pd.DataFrame) -> None:
    assert list(spark.columns) == list(pandas.columns)
    assert dict(spark.dtypes) == dict(pandas.dtypes)
    assert len(spark) == len(pandas)
    for col in pandas.columns:
        a, b = [_cell(v) for v in spark[col]], [_cell(v) for v in pandas[col]]
        bad = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        assert not bad, f"{col}: {len(bad)} rows differ, first {bad[0]}: spark {a[bad[0]]!r} pandas {b[bad[0]]!r}"


@pytest.fixture(scope="module")
def spark():
    yield spark_join.session("local[2]")
    spark_join.stop()


def _store(root: Path, tables: dict[str, pd.DataFrame], project: str, ttl: str | None = None):
    repo = copy_repo(root / "feature_repo")
    if ttl is not None:  # every view of this copy expires values older than `ttl` (a timedelta expression)
        views = repo / "views.py"
        views.write_text(views.read_text().replace("NEVER = timedelta(0)", f"NEVER = {ttl}"))
    write_feature_tables(build_feature_tables(tables), repo / "data")
    store = open_store(repo, project=project, redis_port=1)  # offline only: Redis is never contacted
    apply_repo(store, repo)
    return store


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory, synthetic_lake):
    from minirec.data.movielens import load
    from minirec.train.evaluate import Catalogue
    from minirec.train.split import temporal_split

    tables = load(synthetic_lake)
    store = _store(tmp_path_factory.mktemp("spark_syn"), tables, "sparksyn")
    split = temporal_split(tables["interactions"])
    cat = Catalogue.from_tables(tables["items"], tables["users"], tables["interactions"])
    return store, split, cat


@pytest.mark.slow
def test_label_frame_is_the_same_on_spark(spark, synthetic):
    store, split, _ = synthetic
    ours = label_frame(store, split.train, engine="spark")
    assert len(ours) == len(split.train) > 1000
    assert_same_frame(ours, label_frame(store, split.train, engine="pandas"))


@pytest.mark.slow
def test_evaluation_frames_are_the_same_on_spark(spark, synthetic):
    store, split, cat = synthetic
    users = np.append(cat.user_ids, UNKNOWN_ID)  # a key with no feature rows -> nulls
    items = np.append(cat.item_ids, UNKNOWN_ID)
    for at in (split.cut_valid, split.end + pd.Timedelta(seconds=1)):
        u = users_at(store, users, at, engine="spark")
        assert_same_frame(u, users_at(store, users, at, engine="pandas"))
        assert u.iloc[-1].drop(["user_id", "event_timestamp"]).isna().all()
        i = items_at(store, items, at, engine="spark")
        assert_same_frame(i, items_at(store, items, at, engine="pandas"))
        assert i.iloc[:-1]["genres"].notna().all() and i.iloc[-1].drop(["item_id", "event_timestamp"]).isna().all()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return _store(tmp_path_factory.mktemp("spark_small"), _lake(), "sparksmall")


def _both(store, ent: pd.DataFrame) -> pd.DataFrame:
    from minirec.features.store import point_in_time_join

    ours = spark_join.point_in_time_join_spark(store, ent, USER_SERVICE)
    assert_same_frame(ours, point_in_time_join(store, ent, USER_SERVICE))
    return ours


@pytest.mark.slow
def test_before_any_feature_row_every_feature_is_null(spark, small):
    row = _both(small, pd.DataFrame({"user_id": [1], "event_timestamp": [T("1980-01-01", tz="UTC")]})).iloc[0]
    assert row.drop(["user_id", "event_timestamp"]).isna().all()


@pytest.mark.slow
def test_a_row_at_exactly_the_lookup_time_is_included(spark, small):
    # user 1's Jan 3 10:00 event: visible at 10:00:00 exactly, not 1 µs earlier
    ts = [T("2024-01-03 10:00", tz="UTC"), T("2024-01-03 10:00", tz="UTC") - pd.Timedelta(microseconds=1)]
    rows = _both(small, pd.DataFrame({"user_id": [1, 1], "event_timestamp": ts}))
    assert list(rows.loc[0, "last_items"]) == [20, 10] and list(rows.loc[1, "last_items"]) == [10]


@pytest.mark.slow
def test_two_feature_rows_at_one_time_the_last_in_the_file_wins(spark, tmp_path):
    store = _store(tmp_path, _lake(), "sparktie")
    data = Path(store.config.repo_path) / "data"
    table = pd.read_parquet(data / "user_realtime.parquet")
    at = T("2024-01-03 10:00", tz="UTC")
    dup = table[(table["user_id"] == 1) & (table["event_timestamp"] == at)].assign(last_items=[[99]])
    # the tie goes after the original row in the file
    write_feature_tables({"user_realtime": pd.concat([table, dup], ignore_index=True)}, data)
    row = _both(store, pd.DataFrame({"user_id": [1], "event_timestamp": [at]})).iloc[0]
    assert list(row["last_items"]) == [99]


@pytest.mark.slow
def test_ttl_expiry_nulls_stale_values(spark, tmp_path):
    store = _store(tmp_path, _lake(), "sparkttl", ttl="timedelta(hours=36)")
    ts = [T("2024-01-05 07:59", tz="UTC"), T("2024-01-03 12:00", tz="UTC")]
    rows = _both(store, pd.DataFrame({"user_id": [1, 1], "event_timestamp": ts}))
    assert rows["age_bucket"].isna().all()  # the profile row is from 1990: expired
    assert rows.loc[0, "u_cnt_all"] == 2  # the Jan 5 00:00 snapshot is 8 h old
    assert _cell(rows.loc[0, "last_items"]) is None  # the Jan 3 10:00 row is 46 h old
    assert list(rows.loc[1, "last_items"]) == [20, 10]  # 2 h old


def test_import_starts_no_jvm():
    code = "import sys, minirec.features.spark_join; print('pyspark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="unknown offline engine 'dask'"):
        users_at(None, np.array([1]), T("2024-01-02", tz="UTC"), engine="dask")


def test_engine_and_master_are_settings(monkeypatch):
    from minirec.pipeline.context import RunContext
    from minirec.settings import Settings, get_settings

    assert (Settings().offline_engine, Settings().spark_master) == ("pandas", "local[2]")  # the .env values
    monkeypatch.setenv("OFFLINE_ENGINE", "spark")
    monkeypatch.setenv("SPARK_MASTER", "spark://example:7077")
    get_settings.cache_clear()
    try:
        assert RunContext.from_settings(run_id="x").offline_engine == "spark"
        assert get_settings().spark_master == "spark://example:7077"
        monkeypatch.setenv("OFFLINE_ENGINE", "dask")
        with pytest.raises(ValueError, match="offline_engine"):
            Settings()
    finally:
        get_settings.cache_clear()
