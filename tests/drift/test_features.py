"""The drift job's read of the served users' features: Feast's online store in a real Redis
(materialised from a tiny synthetic lake), aligned with the impressions, unknown users empty,
and an unreachable store raised as ConnectionError (the job counts it and retries the window)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from minirec.infra.process import free_port
from monitoring.drift.features import OnlineFeatures
from monitoring.drift.frames import UNKNOWN, feature_columns
from tests.stream.conftest import make_feast_world


@pytest.fixture
def materialised(tmp_path, offline_tables, redis_server):
    from minirec.features.store import materialize

    world = make_feast_world(tmp_path, offline_tables, redis_server.host, redis_server.port)
    materialize(world.store(), datetime.now(UTC))
    users = pd.read_parquet(offline_tables / "lake" / "users.parquet")
    return world, users


def test_online_rows_are_aligned_and_unknown_users_are_unknown(materialised):
    world, users = materialised
    known = users["user_id"].astype(int).tolist()[:3]
    ids = [known[0], 10**9, known[1], known[0], known[2]]  # repeats and an id the store never saw
    rows = OnlineFeatures(world.repo, world.project, world.redis_host, world.redis_port)(ids)
    assert rows["user_id"].tolist() == ids
    f = feature_columns(rows)
    assert f.loc[1, "gender"] == UNKNOWN and f.loc[1, "u_cnt_all"] == 0.0  # the new user
    assert set(f.loc[[0, 2, 3, 4], "gender"]) <= {"M", "F"}
    by_id = users.set_index("user_id")
    assert f.loc[0, "gender"] == by_id.loc[known[0], "gender"] and f.loc[3, "gender"] == f.loc[0, "gender"]
    assert f["age_bucket"].map(lambda v: "." not in v).all()  # "2", never "2.0"


def test_an_unreachable_online_store_raises_connection_error(materialised):
    world, _ = materialised
    lookup = OnlineFeatures(world.repo, world.project, "127.0.0.1", free_port())
    with pytest.raises(ConnectionError, match="make up"):
        lookup([1, 2])
