"""Bucketing: uniform, independent across layers, exclusive inside one, deterministic across processes.

Each statistical check comes with a negative control that the same check rejects, so a test that
could never fail would show up as a failing control."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from scipy import stats

from minirec.ab.assign import Assigner
from minirec.ab.bucketing import bucket_ranges, choose, choose_many, gbhash, gbhash_ids
from minirec.ab.config import parse
from minirec.settings import REPO_ROOT

N = 1_000_000
IDS = np.arange(1, N + 1)
ALPHA = 0.001  # a correct hash fails a check at this level once in a thousand runs


def chi2_uniform(counts: np.ndarray, probs: np.ndarray) -> float:
    return stats.chisquare(counts, counts.sum() * probs).pvalue


def test_hash_is_uniform_over_one_million_ids():
    n = gbhash_ids("ranker_v1-2026-12", IDS, 2)
    assert n.min() >= 0 and n.max() < 1
    counts = np.bincount((n * 100).astype(int), minlength=100)  # 100 equal bins of [0, 1)
    assert chi2_uniform(counts, np.full(100, 0.01)) > ALPHA
    # negative control: the same test rejects v1-style raw ids mod 100 folded unevenly
    skewed = np.bincount(np.minimum((n * 101).astype(int), 99), minlength=100)
    assert chi2_uniform(skewed, np.full(100, 0.01)) < ALPHA


def test_weighted_variants_match_their_weights(assigner, experiments):
    for weights in ([0.5, 0.5], [0.2, 0.3, 0.5]):
        idx = choose_many(gbhash_ids("weights-test", IDS, 2), bucket_ranges(weights))
        counts = np.bincount(idx, minlength=len(weights))
        assert chi2_uniform(counts, np.array(weights)) > ALPHA, (weights, counts)
    # a 50.5 / 49.5 split over 1M ids is what this test exists to catch
    idx = choose_many(gbhash_ids("weights-test", IDS, 2), bucket_ranges([0.505, 0.495]))
    assert chi2_uniform(np.bincount(idx), np.array([0.5, 0.5])) < ALPHA


def test_coverage_only_adds_users():
    n = gbhash_ids("coverage-test", IDS[:200_000], 2)
    half = choose_many(n, bucket_ranges([0.5, 0.5], 0.5))
    full = choose_many(n, bucket_ranges([0.5, 0.5], 1.0))
    assert abs((half >= 0).mean() - 0.5) < 0.005
    entered = half >= 0
    assert (half[entered] == full[entered]).all()  # raising coverage never moves anyone between arms


def test_vectorised_equals_scalar_including_large_ids():
    rng = np.random.default_rng(0)
    ids = np.concatenate([np.arange(1, 3000), rng.integers(1, 2**53, 3000), [2**53, 10**15, 999_999_999]])
    for seed, version in (("s", 2), ("__ranking", 1), ("salt-with.dots:1", 2)):
        vec = gbhash_ids(seed, ids, version)
        scalar = np.array([gbhash(seed, str(int(u)), version) for u in ids])
        assert (vec == scalar).all(), (seed, version)
    ranges = bucket_ranges([0.2, 0.3, 0.5], 0.7)
    n = gbhash_ids("x", ids, 2)
    assert (choose_many(n, ranges) == np.array([choose(v, ranges) for v in n])).all()


def test_two_layers_are_independent(assigner, experiments):
    # the global holdout removes the same users from both (a shared, intended dependence): test the rest
    kept = IDS[gbhash_ids(experiments.holdout.salt, IDS, 2) >= experiments.holdout.share]
    ranking = assigner.assign_many("ranker_v1", kept)  # layer ranking
    presentation = assigner.assign_many("list_length_v1", kept)  # layer presentation
    table = np.array([[np.sum((ranking == a) & (presentation == b)) for b in (-1, 0, 1)] for a in (-1, 0, 1)])
    assert stats.chi2_contingency(table).pvalue > ALPHA
    # negative control: two experiments sharing one salt are perfectly dependent
    same = choose_many(gbhash_ids("one-salt", IDS, 2), bucket_ranges([0.5, 0.5]))
    dep = np.array([[np.sum((same == a) & (same == b)) for b in (0, 1)] for a in (0, 1)])
    assert stats.chi2_contingency(dep).pvalue < ALPHA


def test_experiments_of_one_layer_never_share_a_user(assigner):
    returning = np.zeros(N, dtype=bool)  # cold_start_v1 targets new users: make everyone eligible
    a = assigner.assign_many("ranker_v1", IDS)
    b = assigner.assign_many("cold_start_v1", IDS, returning=returning)
    assert (a >= 0).sum() > 0.8 * N and (b >= 0).sum() > 0.04 * N
    assert not np.any((a >= 0) & (b >= 0))
    # the layer split follows the slices: 0.9 / 0.1 of the non-held-out users
    held = assigner.cfg.holdout.share
    assert abs((a >= 0).mean() - 0.9 * (1 - held)) < 0.003
    assert abs((b >= 0).mean() - 0.1 * (1 - held)) < 0.003


def test_holdout_users_enter_no_experiment(assigner, experiments):
    held = gbhash_ids(experiments.holdout.salt, IDS, 2) < experiments.holdout.share
    assert abs(held.mean() - experiments.holdout.share) < 0.002
    for name in ("ranker_v1", "list_length_v1"):
        assert not np.any(assigner.assign_many(name, IDS)[held] >= 0)


DIGEST = """
import hashlib
from datetime import UTC, datetime
from minirec.ab.assign import Assigner
from minirec.ab.config import load

def digest(assigner, n):
    now = datetime(2026, 12, 1, tzinfo=UTC)
    parts = []
    for name in ("ranker_v1", "cold_start_v1", "list_length_v1"):
        for u in range(1, n + 1):
            a = assigner.assign(name, u, now, returning=lambda _u: False)
            parts.append(f"{a.variant}:{a.reason}")
    return hashlib.sha256(",".join(parts).encode()).hexdigest()
"""


def test_same_answer_from_two_processes_with_different_hash_seeds(assigner):
    from tests.ab.conftest import EXPERIMENTS

    scope: dict = {}
    exec(DIGEST, scope)  # the same code in this process and in the children
    expected = scope["digest"](assigner, 3000)
    code = DIGEST + f"print(digest(Assigner(load({str(EXPERIMENTS)!r})), 3000))"
    for hash_seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO_ROOT)}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip() == expected


def test_a_new_salt_reshuffles_users():
    base = (REPO_ROOT / "services" / "assignment" / "experiments.yaml").read_text()
    other = Assigner(parse(base.replace("salt: ranker_v1-2026-12", "salt: ranker_v1-2027-01")))
    this = Assigner(parse(base))
    a, b = this.assign_many("ranker_v1", IDS[:100_000]), other.assign_many("ranker_v1", IDS[:100_000])
    both = (a >= 0) & (b >= 0)
    assert both.mean() > 0.8  # same users enter (layer and holdout unchanged) ...
    assert abs((a[both] == b[both]).mean() - 0.5) < 0.01  # ... but their arms are reshuffled
