"""Bad input stops with a clear message and leaves the registry and online store as they were."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest
import redis

from minirec import pipeline as P
from minirec.data.movielens import DataError
from minirec.features.store import FeatureStoreError, check_sources
from minirec.train.registry import RegistryError, list_models, load_dir


def _keys(endpoint) -> int:
    return redis.Redis(host=endpoint.host, port=endpoint.port).dbsize()


def test_missing_data(make_ctx, tmp_path):
    ctx = make_ctx(data_dir=tmp_path / "nowhere")
    with pytest.raises(DataError, match="make data"):
        P.validate_data(ctx)


def test_corrupt_data(make_ctx, tmp_path, synthetic_lake):
    lake = tmp_path / "lake"
    shutil.copytree(synthetic_lake, lake)
    (lake / "interactions.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(DataError, match="unreadable"):
        P.validate_data(make_ctx(data_dir=lake))


def test_empty_training_window(make_ctx):
    with pytest.raises(DataError, match="training window is empty"):
        P.validate_data(make_ctx(window_end="2000-01-01T00:00:00+00:00"))


def test_feature_view_with_no_rows_stops_before_anything_changes(make_ctx, redis_server):
    ctx = make_ctx(redis=redis_server)
    P.validate_data(ctx)
    P.build_training_set(ctx)
    path = ctx.run_repo / "data" / "user_realtime.parquet"
    pq.write_table(pq.read_table(path).schema.empty_table(), path)
    before = _keys(redis_server)
    live_files = sorted(p.name for p in (ctx.feature_repo / "data").glob("*")) \
        if (ctx.feature_repo / "data").exists() else []
    with pytest.raises(FeatureStoreError, match="user_realtime has no rows"):
        P.materialize(ctx)
    assert _keys(redis_server) == before
    after = sorted(p.name for p in (ctx.feature_repo / "data").glob("*")) \
        if (ctx.feature_repo / "data").exists() else []
    assert after == live_files  # the live repo was not touched
    with pytest.raises(FeatureStoreError, match="no rows"):
        check_sources(ctx.run_repo)


def test_model_directory_that_does_not_exist(make_ctx, tmp_path):
    with pytest.raises(RegistryError, match="does not exist"):
        load_dir(tmp_path / "no-model")
    ctx = make_ctx()
    with pytest.raises(P.PipelineError, match="missing"):
        P.register(ctx)
    assert list_models(ctx.model_store, ctx.model_name) == []


def test_unreachable_redis_leaves_online_store_alone(make_ctx):
    ctx = make_ctx()  # port 1: nothing listens
    P.validate_data(ctx)
    P.build_training_set(ctx)
    with pytest.raises(FeatureStoreError, match="Redis did not answer"):
        P.materialize(ctx)
    assert not (ctx.feature_repo / "data").exists()
