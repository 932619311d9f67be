"""The ranking stage's pieces (minirec.rank, minirec.pipeline.ranking) on small hand-made inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from minirec.features.tables import GENRES
from minirec.pipeline.context import PipelineError
from minirec.pipeline.ranking import check_point_in_time, choose_segments
from minirec.rank.features import FEATURES, ItemTable, pair_features
from minirec.rank.model import Ranker, in_segments, rerank_order
from minirec.rank.offline import served_matrix, top_candidates
from minirec.train.metrics import top_k


def _items(m: int = 6, d: int = 4, seed: int = 0) -> ItemTable:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"item_id": np.arange(10, 10 + m), "year": [1990 + i for i in range(m - 1)] + [0],
                          "i_cnt_7d": np.arange(m), "i_cnt_30d": np.arange(m) * 2, "i_cnt_all": np.arange(m) * 9,
                          "i_pop_decayed": np.linspace(0, 5, m),
                          "genres": [["Action"], ["Comedy", "Drama"], [], ["Drama"], ["Action", "Drama"], ["Horror"]][:m]})
    vecs = rng.normal(size=(m, d + 1)).astype(np.float32)
    return ItemTable.build(frame, vecs, frame["item_id"].values)


def test_pair_features_are_user_major_and_compute_the_crosses():
    items = _items()
    share = np.zeros(len(GENRES), dtype=np.float32)
    share[GENRES.index("Drama")] = 1.0
    rows = [{"age_bucket": 2, "gender": "F", "u_cnt_all": 7, "u_genre_share_90d": share, "last_items": [13, 99]},
            {}]  # the second user has no online row values at all
    cand = np.array([[1, 3, 0], [5, -1, -1]])
    scores = np.array([[3.0, 2.0, 1.0], [0.5, 0, 0]], dtype=np.float32)
    x = pair_features(rows, items, cand, scores, pop_weight=2.0)
    col = {n: k for k, n in enumerate(FEATURES)}
    assert x.shape == (6, len(FEATURES))
    assert x[0, col["is_female"]] == 1 and x[0, col["u_cnt_all"]] == 7 and x[0, col["n_last_items"]] == 2
    assert x[:3, col["retrieval_rank"]].tolist() == [0, 1, 2]
    assert x[0, col["genre_affinity"]] == pytest.approx(0.5)  # Comedy|Drama: half the item's genre mass
    assert x[1, col["genre_affinity"]] == pytest.approx(1.0)  # Drama
    pop_term = 2.0 * items.pop[1]
    assert x[0, col["pop_term"]] == pytest.approx(pop_term)
    assert x[0, col["learned_score"]] == pytest.approx(3.0 - pop_term)
    # the candidate row 3 is item 13, the user's only known recent item: cosine 1 with itself
    assert x[1, col["sim_last_max"]] == pytest.approx(1.0, abs=1e-6)
    assert np.isnan(x[3, col["age_bucket"]]) and np.isnan(x[3, col["sim_last_mean"]])
    assert np.isnan(x[4]).all()  # padding
    assert x[2, col["year"]] == 1990 and np.isnan(items.x[5, 0])  # year 0 is unknown


def test_item_rows_are_aligned_to_the_item_ids_by_id():
    """A bundle whose row -> item-id map differs from the feature frame's order (a permuted bundle)
    still reads each item's own features; an id the frame lacks gets NaN."""
    frame = pd.DataFrame({"item_id": [2, 1], "year": [1992, 1991], "i_cnt_7d": [5, 3], "i_cnt_30d": [0, 0],
                          "i_cnt_all": [0, 0], "i_pop_decayed": [0.0, 0.0], "genres": [["Drama"], []]})
    t = ItemTable.build(frame, np.zeros((3, 3), np.float32), np.array([1, 2, 7]))
    assert t.x[:2, 0].tolist() == [1991, 1992] and t.x[:2, 1].tolist() == [3, 5]
    assert t.genres[1, GENRES.index("Drama")] == 1 and np.isnan(t.x[2, :-1]).all()


def test_ranker_training_refuses_features_dated_at_or_after_the_first_label():
    start = pd.Timestamp("1998-03-07 02:21:09", tz="UTC")
    ok = pd.DataFrame({"event_timestamp": [start - pd.Timedelta(microseconds=1)] * 2})
    assert check_point_in_time(start, ok, ok) == str(start - pd.Timedelta(microseconds=1))
    late = pd.DataFrame({"event_timestamp": [start - pd.Timedelta(days=3), start]})
    with pytest.raises(PipelineError, match="future"):
        check_point_in_time(start, ok, late)


def test_the_served_matrix_reorders_only_the_top_candidates():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(5, 40))
    seen = rng.random((5, 40)) < 0.2
    cand, cs = top_candidates(scores, seen, 10)
    assert not seen[np.arange(5)[:, None], cand].any()
    assert (np.diff(cs, axis=1) <= 0).all()
    ranker = rng.normal(size=(5, 10))
    served = served_matrix(scores, cand, ranker)
    before, after = top_k(scores, 10, exclude=seen), top_k(served, 10, exclude=seen)
    assert [set(r) for r in before.tolist()] == [set(r) for r in after.tolist()]  # same top 10: recall kept
    expect = np.take_along_axis(cand, np.argsort(-ranker, axis=1, kind="stable"), 1)
    np.testing.assert_array_equal(after, expect)  # in ranker order
    rest = top_k(served, 20, exclude=seen)[:, 10:]
    np.testing.assert_array_equal(rest, top_k(scores, 20, exclude=seen)[:, 10:])  # below: retrieval order


def test_rerank_keeps_padding_last_and_ties_in_retrieval_order():
    cand = np.array([[4, 7, -1, 9]])
    order = rerank_order(np.array([[0.0, 0.0, 5.0, 1.0]]), cand)
    assert order.tolist() == [[3, 0, 1, 2]]


def test_lambdarank_learns_a_planted_signal_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    q, k = 60, 20
    x = rng.normal(size=(q * k, len(FEATURES))).astype(np.float32)
    y = (x[:, FEATURES.index("genre_affinity")] > 0.8).astype(np.float32)  # relevance = one feature
    r = Ranker.fit(x, y, np.full(q, k), rounds=30)
    p = r.predict(x).reshape(q, k)
    top = np.argsort(-p, axis=1)[:, :3]
    assert y.reshape(q, k)[np.arange(q)[:, None], top].mean() > 0.9
    r.save(tmp_path / "r")
    np.testing.assert_allclose(Ranker.load(tmp_path / "r").predict(x), r.predict(x))
    with pytest.raises(ValueError, match="features"):
        r.predict(x[:, :-1])


def test_the_ranker_reorders_only_its_segments_and_keeps_them_through_save(tmp_path):
    """segments = ("cold",): a warm user's list (recent items known) keeps retrieval order, a cold
    user's (no recent items, or unknown) is in ranker order; the choice survives save/load."""
    rng = np.random.default_rng(2)
    q, k = 40, 10
    x = rng.normal(size=(q * k, len(FEATURES))).astype(np.float32)
    y = (x[:, FEATURES.index("genre_affinity")] > 0.5).astype(np.float32)
    n_last = FEATURES.index("n_last_items")
    x[:, n_last] = np.repeat(np.where(np.arange(q) % 2 == 0, 5.0, 0.0), k)  # even users warm, odd cold
    x[k * 3:k * 4, n_last] = np.nan  # user 3: unknown -> cold
    r = Ranker.fit(x, y, np.full(q, k), rounds=20, params={"min_data_in_leaf": 5})
    assert r.segments == ("warm", "cold")
    np.testing.assert_allclose(r.predict_lists(x, (q, k)), r.predict(x).reshape(q, k))  # default: everyone
    r.segments = ("cold",)
    r.save(tmp_path / "r")
    loaded = Ranker.load(tmp_path / "r")
    assert loaded.segments == ("cold",)
    p = loaded.predict_lists(x, (q, k))
    cand = np.arange(q * k).reshape(q, k)
    order = rerank_order(p, cand)
    assert (order[0::2] == np.arange(k)).all()  # warm users: retrieval order
    np.testing.assert_allclose(p[1::2], r.predict(x).reshape(q, k)[1::2])  # cold users: ranker scores
    assert not (order[1::2] == np.arange(k)).all()
    assert in_segments(np.array([0.0, np.nan, 3.0]), ("warm",)).tolist() == [False, False, True]


def test_segments_are_those_where_the_rankers_out_of_fold_gain_exceeds_the_margin():
    rng = np.random.default_rng(3)
    warm = np.arange(200) < 100
    retrieval = rng.uniform(0, 1, 200)
    noise = rng.normal(0.0, 0.3, 200)
    noise -= noise[warm].mean() - 0.002  # warm: noise around a +0.002 gain, inside the margin
    gain = np.where(warm, noise, 0.1 + rng.normal(0, 0.05, 200))
    segments, by = choose_segments(retrieval + gain, retrieval, warm, margin=0.005)
    assert segments == ("cold",) and by["warm"]["low"] < 0 < by["cold"]["low"]  # the intervals are reported
    assert by["warm"]["users"] == 100 and by["cold"]["mean"] > 0.09
    assert choose_segments(retrieval, retrieval, warm, margin=0.0)[0] == ()  # no gain: it reorders nothing
    assert choose_segments(retrieval + 0.004, retrieval, warm, margin=0.005)[0] == ()  # inside the margin
    assert choose_segments(retrieval + 0.006, retrieval, warm, margin=0.005)[0] == ("cold",)  # warm: not eligible
    assert choose_segments(retrieval + 0.006, retrieval, warm, margin=0.005,
                           eligible=("warm", "cold"))[0] == ("warm", "cold")
