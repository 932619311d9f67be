"""Metric functions against hand-computed values (ties, masking, users with no relevant item)."""

import math

import numpy as np
import pytest

from minirec.train.metrics import coverage, evaluate_rankings, paired_bootstrap, top_k, user_metrics


def test_single_user_by_hand():
    # ranked: 3, 1, 4, 0, 2 ; relevant {1, 0, 9}: hits at positions 2 and 4
    m = user_metrics(np.array([3, 1, 4, 0, 2]), {1, 0, 9}, k=5)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg"] == pytest.approx(dcg / idcg)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["hit"] == 1.0
    assert m["mrr"] == pytest.approx(1 / 2)
    # K smaller than the first hit position
    m1 = user_metrics(np.array([3, 1, 4, 0, 2]), {1, 0, 9}, k=1)
    assert (m1["ndcg"], m1["recall"], m1["hit"], m1["mrr"]) == (0.0, 0.0, 0.0, 0.0)


def test_idcg_uses_min_of_relevant_and_k():
    # 1 relevant item at rank 1 -> perfect NDCG even at K=10
    assert user_metrics(np.arange(10), {0}, k=10)["ndcg"] == pytest.approx(1.0)
    # 3 relevant, K=2, both top slots hit -> NDCG 1, recall 2/3
    m = user_metrics(np.array([5, 6, 7]), {5, 6, 8}, k=2)
    assert m["ndcg"] == pytest.approx(1.0) and m["recall"] == pytest.approx(2 / 3)


def test_ties_break_by_lower_item_index_and_seen_items_are_excluded():
    scores = np.array([[0.5, 0.9, 0.5, 0.9, 0.1]])
    assert top_k(scores, 5).tolist() == [[1, 3, 0, 2, 4]]
    exclude = np.array([[False, True, False, False, False]])
    assert top_k(scores, 3, exclude).tolist() == [[3, 0, 2]]


def test_user_without_relevant_items_is_nan_and_left_out_of_the_mean():
    ranked = np.array([[0, 1, 2], [2, 1, 0]])
    summary, per_user = evaluate_rankings(ranked, [{0}, set()], n_items=4, ks=(2,))
    assert per_user["ndcg@2"][0] == 1.0 and math.isnan(per_user["ndcg@2"][1])
    assert summary["ndcg@2"] == 1.0  # not 0.5: the empty user is not averaged
    assert summary["users"] == 1
    assert summary["coverage@2"] == pytest.approx(3 / 4)  # items {0, 1, 2} of 4


def test_coverage_and_bootstrap():
    assert coverage(np.array([[0, 1], [1, 2]]), 10) == pytest.approx(0.3)
    a = np.array([0.5, 0.6, 0.7, np.nan])
    b = np.array([0.4, 0.5, 0.6, 0.1])
    ci = paired_bootstrap(a, b, n_boot=500)
    assert ci["users"] == 3 and ci["mean"] == pytest.approx(0.1)
    assert ci["low"] == pytest.approx(0.1) and ci["high"] == pytest.approx(0.1)  # constant difference
    noisy = paired_bootstrap(np.array([1.0, 0.0, 1.0, 0.0]), np.array([0.0, 1.0, 0.0, 1.0]), n_boot=500)
    assert noisy["low"] < 0 < noisy["high"]


def test_novelty_is_the_mean_self_information_of_the_recommended_items():
    from minirec.train.metrics import novelty, self_information

    info = self_information(np.array([0, 0, 0, 1]), 3)  # counts 3, 1, 0 -> p = 4/7, 2/7, 1/7
    np.testing.assert_allclose(info, -np.log2(np.array([4, 2, 1]) / 7))
    ranked = np.array([[0, 1], [2, 2]])
    assert novelty(ranked, info) == pytest.approx(info[[0, 1, 2, 2]].mean())
    assert novelty(ranked, info, rows=np.array([False, True])) == pytest.approx(np.log2(7))
    assert novelty(ranked[:0], info) != novelty(ranked[:0], info)  # no users: NaN
