"""Online features: the raw Redis reader returns exactly what Feast returns, and the fast
encoder builds exactly the tensors of the model's own encode_users."""

from __future__ import annotations

import math

import numpy as np
import pytest
import redis
import torch

from minirec.model.user_encoder import FastUserEncoder
from services.recommender.features import (
    OnlineFeatures,
    feast_entity_key,
    feast_field,
    layout_from_feast,
)
from services.recommender.retrieval import top_k


@pytest.fixture(scope="module")
def store(world):
    from minirec.features.store import open_store

    return open_store(world.feature_repo, project=world.project, redis_host=world.redis_host,
                      redis_port=world.redis_port)


@pytest.fixture(scope="module")
def reader(world, store):
    client = redis.Redis(host=world.redis_host, port=world.redis_port)
    yield OnlineFeatures(client, layout_from_feast(store, "two_tower_v1"))
    client.close()


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=0) or (math.isnan(a) and math.isnan(b))
    return a == b


def test_key_and_field_encoding_match_feast(world):
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.helpers import _mmh3
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    for uid in (1, 196, 2**40 + 7):
        ek = EntityKey(join_keys=["user_id"], entity_values=[Value(int64_val=uid)])
        assert feast_entity_key("user_id", uid, "p") == serialize_entity_key(ek, 3) + b"p"
    assert feast_field("user_profile", "gender") == _mmh3("user_profile:gender")


def test_raw_read_equals_feast_get_online_features(world, store, reader):
    users = world.users()["user_id"].astype(int).tolist()
    ids = users[:60] + [10**9]  # plus one user that has no online row
    fs = store.get_feature_service("two_tower_v1")
    feast = store.get_online_features(features=fs, entity_rows={"user_id": ids}).to_dict()
    rows, seen = reader.read(ids)
    assert rows[-1] is None and all(v is None for v in (feast[n][-1] for n in reader.layout.names))
    compared = 0
    for j, row in enumerate(rows[:-1]):
        assert row is not None, f"user {ids[j]} has Feast rows but the raw read found none"
        for name in reader.layout.names:
            assert _same(row[name], feast[name][j]), (ids[j], name, row[name], feast[name][j])
            compared += 1
    assert compared == 60 * len(reader.layout.names)
    # the seen-sets come back in the same round trip
    assert seen[0] == world.seen(ids[0]) and seen[-1] == set()


def test_fast_encoder_equals_model_encoder(world, reader):
    from minirec.model.two_tower import USER_FEATURES, encode_users
    from minirec.train.registry import load_bundle

    b = load_bundle(world.model_store, tag=world.tags[0])
    ids = world.users()["user_id"].astype(int).tolist()[:40] + [10**9]
    rows, _ = reader.read(ids)
    rows = [r or {} for r in rows]
    rows[0] = {**rows[0], "last_items": None, "age_bucket": None, "u_genre_share_90d": [0.5]}  # odd values
    ref = encode_users({n: [r.get(n) for r in rows] for n in USER_FEATURES}, b.model.cfg, ids)
    fast = FastUserEncoder(b.model.cfg)(rows, ids)
    assert ref.keys() == fast.keys()
    for k in ref:
        assert ref[k].dtype == fast[k].dtype and torch.equal(ref[k], fast[k]), k


def test_top_k_drops_padding_seen_and_duplicates():
    ids = np.array([5, -1, 7, 5, 9, 3, -1, -1])
    scores = np.arange(8, 0, -1, dtype=np.float32)
    assert top_k(ids, scores, 10, exclude={9}) == [(5, 8.0), (7, 6.0), (3, 3.0)]  # k > what is left
    assert top_k(ids, scores, 1, exclude=set()) == [(5, 8.0)]
