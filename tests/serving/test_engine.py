"""The request pipeline in-process (services.recommender.engine.Engine) against the session Redis:
what one request may and may not change for the others."""

from __future__ import annotations

import pytest

from minirec.model.two_tower import N_AGE
from services.recommender.schemas import RecommendRequest
from tests.serving.conftest import heaviest_user as _heaviest


def test_a_heavy_users_deep_search_leaves_the_shared_index_depth_alone(engine, world):
    mv = engine.status.models["control"]
    mv.index.hnsw.efSearch = 32  # shallower than any K' below, so a permanent raise would show
    uid = _heaviest(world)
    assert len(world.seen(uid)) + 100 > 32
    out = engine.recommend([RecommendRequest(user_id=uid, k=100)])[0]  # pass 1 K' = 150, then pass 2 deeper
    assert out.fallback is None
    assert mv.index.hnsw.efSearch == 32, "one request changed the index's efSearch for every later search"
    # the deeper search still filled k with unseen items
    left = mv.n_items - len(world.seen(uid))
    assert len(out.items) == min(100, left)


# ---------------------------------------------------------------- blast radius of one bad online row
def _sample(name: str, **labels) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def _value(**kw) -> bytes:
    from feast.protos.feast.types.Value_pb2 import Value

    return Value(**kw).SerializeToString()


BAD_ROWS = {
    "age_bucket-out-of-range": {"age_bucket": _value(int64_val=N_AGE + 3)},
    "negative-age_bucket": {"age_bucket": _value(int64_val=-1)},
    "negative-count": {"u_cnt_all": _value(int64_val=-5)},
    "infinite-genre-share": {"u_genre_share_90d": _value(float_list_val={"val": [float("inf")] * 19})},
    "string-for-a-count": {"u_cnt_7d": _value(string_val="seven")},
    "not-a-feast-value": {"gender": b"\xff\xfe not a proto"},
    "key-is-not-a-hash": {"<key>": "not a hash"},
}


@pytest.mark.parametrize("corrupt", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_one_bad_row_falls_back_alone_and_never_trips_the_breaker(engine, world, planted, corrupt):
    good = world.users().sort_values("n", ascending=False)["user_id"].astype(int).tolist()[:6]
    bad = planted(corrupt)
    alone = engine.recommend([RecommendRequest(user_id=u, k=10) for u in good])
    before = {r: _sample("recommender_fallbacks_total", reason=r) for r in ("bad_features", "online_store_unavailable")}
    batch = [RecommendRequest(user_id=u, k=10) for u in good[:3]] + [RecommendRequest(user_id=bad, k=10)] + [
        RecommendRequest(user_id=u, k=10) for u in good[3:]]
    out = engine.recommend(batch)
    mixed = out[:3] + out[4:]
    assert [r.fallback for r in mixed] == [None] * 6, "a bad row changed what the good users of its batch got"
    assert [[i.item_id for i in r.items] for r in mixed] == [[i.item_id for i in r.items] for r in alone]
    assert out[3].fallback == "bad_features" and len(out[3].items) == 10
    assert _sample("recommender_fallbacks_total", reason="bad_features") == before["bad_features"] + 1
    assert _sample("recommender_fallbacks_total", reason="online_store_unavailable") == \
        before["online_store_unavailable"]
    # the breaker did not open: the very next request (well within its 0.5 s) is personalised
    assert engine.recommend([RecommendRequest(user_id=good[0])])[0].fallback is None
    assert _sample("recommender_online_store_up") == 1.0


def test_an_unreadable_seen_set_is_said_in_the_response(engine, world, planted):
    uid = planted({"<seen>": "not a set"})
    out = engine.recommend([RecommendRequest(user_id=uid, k=10), RecommendRequest(user_id=uid, k=10,
                                                                                  exclude_seen=False)])
    assert out[0].fallback is None and out[0].exclude_seen_honoured is False
    assert out[1].exclude_seen_honoured is True  # nothing was asked that could not be done
    ok = engine.recommend([RecommendRequest(user_id=_heaviest(world), k=10)])[0]
    assert ok.exclude_seen_honoured is True and not {i.item_id for i in ok.items} & world.seen(_heaviest(world))
