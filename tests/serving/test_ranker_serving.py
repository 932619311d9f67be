"""The ranking stage inside the recommender's batched path (in-process Engine over the session Redis and
the world's bundle, which loadtests.world trains with a ranker):

- parity: the served top-k equals the offline pipeline's ranking (minirec.rank.offline: exact retrieval
  scores, top-100 unseen candidates, the same ranker and item features from the same bundle, the user
  features read through the Feast SDK) for the same users;
- failure: a ranker that raises costs the batch its ranking, not its answer: retrieval order, the
  `ranker_fallback` flag, one count in recommender_ranker_failures_total."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from minirec.features.store import USER_SERVICE, online_features, open_store
from minirec.model.two_tower import user_vectors
from minirec.rank.model import K_CANDIDATES
from minirec.rank.offline import candidates, predict_matrix, served_matrix
from minirec.train.metrics import top_k
from services.recommender.schemas import RecommendRequest


def _users(world, n: int) -> list[int]:
    return world.users().sort_values("n", ascending=False)["user_id"].astype(int).tolist()[:n]


def _counter(name: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name) or 0.0


def test_served_ranking_equals_the_offline_pipelines_ranking(engine, world):
    mv = engine.status.models["control"]
    assert mv.ranker is not None and mv.rank_items is not None, "the world's bundle should carry a ranker"
    # the heaviest users are warm, which the pipeline's ranker never reorders (ranking.ELIGIBLE): let this
    # engine's copy reorder both segments, so the parity below covers ranked lists (served and offline
    # read the same mv.ranker)
    mv.ranker.segments = ("warm", "cold")
    uids = _users(world, 8)
    served = engine.recommend([RecommendRequest(user_id=u, k=10) for u in uids])
    assert all(r.fallback is None and not r.ranker_fallback for r in served)

    # offline: the pipeline's functions on the same bundle, user features through the Feast SDK
    store = open_store(world.feature_repo, project=world.project, redis_host=world.redis_host,
                       redis_port=world.redis_port)
    frame = online_features(store, USER_SERVICE, "user_id", uids)
    frame["user_id"] = uids
    _, seen_sets = engine.features.read(uids)
    seen = np.zeros((len(uids), mv.n_items), dtype=bool)
    for b, (s, last) in enumerate(zip(seen_sets, frame["last_items"], strict=True)):
        for i in set(s or ()) | {int(x) for x in (last if last is not None else ())}:
            if i in mv.row_of:
                seen[b, mv.row_of[i]] = True
    q = user_vectors(mv.model, frame, np.array(uids))
    scores = q @ mv.item_vectors.T  # (U, M) exact retrieval scores
    c = candidates(scores, seen, np.array(uids), frame, mv.rank_items, float(mv.model.cfg.pop_weight), K_CANDIDATES)
    p = predict_matrix(mv.ranker, c)
    offline = mv.item_ids[top_k(served_matrix(scores, c.cand, p), 10, exclude=seen)]  # (U, 10) item ids
    assert [[it.item_id for it in r.items] for r in served] == offline.tolist()
    cand_score = {(b, int(mv.item_ids[r])): s for b in range(len(uids)) for r, s in zip(c.cand[b], c.scores[b],
                                                                                      strict=True)}
    keep = mv.ranker.reorders(c.x, c.cand.shape)  # (U,) the users in the ranker's segments
    for b, r in enumerate(served):
        retrieval_scores = [cand_score[b, it.item_id] for it in r.items]
        # the item's score is the ranker's for a user it reorders, retrieval's for the others ...
        want = np.sort(p[b])[::-1][:10] if keep[b] else retrieval_scores
        np.testing.assert_allclose([it.score for it in r.items], want, atol=1e-4)
        # ... and the retrieval stage's score travels beside it
        np.testing.assert_allclose([it.retrieval_score for it in r.items], retrieval_scores, atol=1e-4)
    # and the ranker did reorder something: the retrieval order alone would give other lists
    retrieval = mv.item_ids[top_k(scores, 10, exclude=seen)]
    assert retrieval.tolist() != offline.tolist()


@pytest.fixture
def broken_ranker(engine):
    """The control model's ranker swapped for a booster trained on 3 features: it loads, and fails at predict."""
    mv = engine.status.models["control"]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    booster = lgb.train({"objective": "lambdarank", "verbose": -1, "min_data_in_leaf": 5},
                        lgb.Dataset(x, label=(x[:, 0] > 0).astype(int), group=[20] * 10), num_boost_round=2)
    mv.ranker.booster, good = booster, mv.ranker.booster
    mv.ranker.segments, segments = ("warm", "cold"), mv.ranker.segments  # the tests' users are warm
    yield mv
    mv.ranker.booster, mv.ranker.segments = good, segments


def test_a_ranker_failure_serves_retrieval_order_flagged_and_counted(engine, world, broken_ranker):
    uids = _users(world, 3)
    before = _counter("recommender_ranker_failures_total")
    out = engine.recommend([RecommendRequest(user_id=u, k=10, timings=True) for u in uids])
    assert [r.ranker_fallback for r in out] == [True] * 3
    assert all(r.fallback is None and len(r.items) == 10 for r in out)
    assert _counter("recommender_ranker_failures_total") == before + 1  # one failed call for the batch
    # what was served is the retrieval stage's order: the same as a bundle without a ranker
    ranker, broken_ranker.ranker = broken_ranker.ranker, None
    try:
        plain = engine.recommend([RecommendRequest(user_id=u, k=10) for u in uids])
    finally:
        broken_ranker.ranker = ranker
    assert [[i.item_id for i in r.items] for r in out] == [[i.item_id for i in r.items] for r in plain]
    assert all(r.ranker_fallback is False for r in plain)
    assert all(it.retrieval_score is None for r in out for it in r.items)  # no ranker score to show beside
    body = out[0].model_dump(mode="json")  # the response still serialises: the API answers 200
    assert body["ranker_fallback"] is True and "rank" in body["timings_ms"]


def test_users_outside_the_rankers_segments_never_reach_the_booster(engine, world, broken_ranker):
    """With segments = cold only, warm users' candidates get no features and no booster call: the broken
    booster is not touched (no fallback, no failure counted) and they are served in retrieval order."""
    uids = _users(world, 3)  # the heaviest users: warm
    rows, _ = engine.features.read(uids)
    assert broken_ranker.depths(broken_ranker.reordered(rows)) == [100] * 3  # reordered: retrieval hands on 100 candidates each
    segments, broken_ranker.ranker.segments = broken_ranker.ranker.segments, ("cold",)
    try:
        assert broken_ranker.depths(broken_ranker.reordered(rows)) == [0] * 3  # not reordered: the request's k is searched, no more
        before = _counter("recommender_ranker_failures_total")
        out = engine.recommend([RecommendRequest(user_id=u, k=10) for u in uids])
        ranker, broken_ranker.ranker = broken_ranker.ranker, None
        try:
            plain = engine.recommend([RecommendRequest(user_id=u, k=10) for u in uids])
        finally:
            broken_ranker.ranker = ranker
    finally:
        broken_ranker.ranker.segments = segments
    assert [r.ranker_fallback for r in out] == [False] * 3
    assert _counter("recommender_ranker_failures_total") == before
    assert [[i.item_id for i in r.items] for r in out] == [[i.item_id for i in r.items] for r in plain]
    # the score shown is the retrieval score, which travels beside it
    assert all(it.score == pytest.approx(it.retrieval_score) for r in out for it in r.items)
