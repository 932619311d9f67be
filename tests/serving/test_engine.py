"""The request pipeline in-process (services.recommender.engine.Engine) against the session Redis:
what one request may and may not change for the others."""

from __future__ import annotations

from services.recommender.schemas import RecommendRequest


def _heaviest(world) -> int:
    return int(world.users().sort_values("n").iloc[-1]["user_id"])


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

