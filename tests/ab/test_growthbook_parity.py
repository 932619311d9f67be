"""Our assignment equals the GrowthBook SDK's (PyPI growthbook 4.0.0) for the same user and experiment.

The SDK is asked exactly what the service decides: the global holdout as an SDK experiment with
weights [share, 1 - share] (variation 0 = held out), then the experiment with its key, salt as
seed, hashVersion 2, weights, coverage, layer as namespace, and the audience as a condition on a
`returning` attribute. Checked over the repository's experiments and over random ones (random
seeds, 2-4 variants with random weights, random coverage and layer slices)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from growthbook import Experiment as GBExperiment
from growthbook import GrowthBook

from minirec.ab.assign import Assigner
from minirec.ab.config import Audience, Experiment, ExperimentsConfig, Holdout

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def sdk_variant(gb: GrowthBook, cfg: ExperimentsConfig, e: Experiment, user_id: int, returning: bool) -> str | None:
    """The SDK's answer: the variant name when the user is in the experiment, else None."""
    gb.set_attributes({"id": str(user_id), "returning": returning})
    if cfg.holdout is not None:
        held = gb.run(GBExperiment(key="holdout", variations=[True, False], seed=cfg.holdout.salt, hashVersion=2,
                                   weights=[cfg.holdout.share, 1 - cfg.holdout.share]))
        if held.inExperiment and held.value:
            return None
    condition = None if e.audience == Audience.all else {"returning": e.audience == Audience.returning}
    res = gb.run(GBExperiment(key=e.name, variations=list(e.variants), weights=e.weights, coverage=e.coverage,
                              seed=e.salt, hashVersion=2, condition=condition,
                              namespace=(e.layer, *e.layer_range) if e.layer else None))
    return res.value if res.inExperiment else None


def ours(assigner: Assigner, name: str, user_id: int, returning: bool) -> str | None:
    a = assigner.assign(name, user_id, NOW, returning=lambda _u: returning)
    return a.variant if a.in_experiment else None


def compare(cfg: ExperimentsConfig, ids, returning_of) -> int:
    """Asserts equality for every (experiment, user); returns how many users the SDK put in an experiment."""
    assigner, gb = Assigner(cfg), GrowthBook(attributes={})
    entered = 0
    for e in cfg.experiments.values():
        if e.status(NOW) != "running":
            continue  # /assign refuses it (409); the SDK's equivalent is active=False
        vec = assigner.assign_many(e.name, np.asarray(ids), returning=np.array([returning_of(u) for u in ids]))
        for u, v in zip(ids, vec, strict=True):
            want = sdk_variant(gb, cfg, e, int(u), returning_of(int(u)))
            got = ours(assigner, e.name, int(u), returning_of(int(u)))
            assert got == want, (e.name, int(u), got, want)
            assert (list(e.variants)[v] if v >= 0 else None) == want, (e.name, int(u), "vectorised")
            entered += want is not None
    gb.destroy()
    return entered


def test_repository_experiments_equal_the_sdk(experiments):
    ids = list(range(1, 6001)) + [10**6 + 7, 2**31 + 11, 2**53 - 1]
    entered = compare(experiments, ids, returning_of=lambda u: u % 3 == 0)
    assert entered > 6000  # the comparison covered real assignments, not only "not in experiment"


def random_config(rng: np.random.Generator, i: int) -> ExperimentsConfig:
    k = int(rng.integers(2, 5))
    w = rng.dirichlet(np.ones(k))
    w[-1] = 1.0 - w[:-1].sum()  # weights must sum to 1 within 1e-9
    lo = float(rng.uniform(0, 0.5))
    exp = Experiment(name=f"exp_{i}", salt=f"seed-{i}-{rng.integers(1e9)}",
                     variants={f"v{j}": float(x) for j, x in enumerate(w)},
                     coverage=float(rng.uniform(0.05, 1.0)), layer="l" if i % 2 else None,
                     layer_range=(lo, float(rng.uniform(lo + 0.1, 1.0))),
                     audience=[Audience.all, Audience.new, Audience.returning][i % 3], start=NOW)
    holdout = Holdout(share=float(rng.uniform(0, 0.3)), salt=f"holdout-{i}") if i % 4 else None
    return ExperimentsConfig(holdout=holdout, layers={"l": "random layer"}, experiments={exp.name: exp})


@pytest.mark.parametrize("i", range(24))
def test_random_experiments_equal_the_sdk(i):
    rng = np.random.default_rng(1000 + i)
    cfg = random_config(rng, i)
    ids = rng.integers(1, 2**40, 400).tolist()
    compare(cfg, ids, returning_of=lambda u: u % 2 == 0)
