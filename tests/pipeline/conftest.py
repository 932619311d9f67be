"""Fixtures for the training pipeline: a small synthetic lake, a private Feast
repo and model store per test, Redis from the session's real redis-server."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from minirec.data.synthetic import SyntheticConfig, generate


@pytest.fixture(scope="session")
def synthetic_lake(tmp_path_factory) -> Path:
    """data/ml-100k-shaped folder with ~4k synthetic interactions over 60 days."""
    root = tmp_path_factory.mktemp("lake")
    generate(SyntheticConfig(n_users=250, n_items=150, mean_interactions=16, days=60, seed=7),
             root / "ml-100k")
    return root / "ml-100k"


def offline_ctx(root: Path, synthetic_lake: Path, run_id: str, project: str, epochs: int = 1):
    """A RunContext in `root` over the synthetic lake with no Redis (for the steps up to evaluate)."""
    from minirec.features.store import copy_repo
    from minirec.pipeline import RunContext

    return RunContext.from_settings(
        run_id=run_id, data_dir=synthetic_lake, artifacts_dir=root / "artifacts",
        feature_repo=copy_repo(root / "feature_repo"), model_store=root / "bentoml", feast_project=project,
        redis_host="127.0.0.1", redis_port=1, train={"epochs": epochs, "progress": False})


@pytest.fixture
def make_ctx(tmp_path, synthetic_lake):
    """Build a RunContext isolated in tmp_path (own Feast repo copy, artifacts, model store)."""
    from minirec.features.store import copy_repo
    from minirec.pipeline import RunContext

    def _make(redis=None, **overrides):
        run_id = overrides.pop("run_id", "test")
        repo = copy_repo(tmp_path / "feature_repo")
        base = dict(data_dir=synthetic_lake, artifacts_dir=tmp_path / "artifacts", feature_repo=repo,
                    model_store=tmp_path / "bentoml", feast_project=f"t{uuid.uuid4().hex[:8]}",
                    redis_host=redis.host if redis else "127.0.0.1", redis_port=redis.port if redis else 1,
                    train={"epochs": 2, "progress": False})
        base.update(overrides)
        return RunContext.from_settings(run_id=run_id, **base)

    return _make


@pytest.fixture(scope="session")
def pass_the_baseline_rule():
    """`f(ctx)` lowers the baselines' recorded validation NDCG@10 to half the model's.

    A 2-epoch model on the synthetic lake does not beat item-kNN; tests about what happens after the
    gate (release, registry, tracking) use this so the gate's production rule is what decides
    (test_gate.py and tests/model/test_quality.py test the baseline rule itself)."""
    from minirec import pipeline as P
    from minirec.pipeline.context import BASELINES

    def lower(ctx) -> None:
        valid = P.read_json(ctx.run_dir / "metrics_valid.json")
        for name in valid:
            if name in BASELINES:  # not the model, its stages (retrieval_only, ...) or the "protocol" key
                valid[name]["ndcg@10"] = valid["two_tower"]["ndcg@10"] / 2
        P.write_json(ctx.run_dir / "metrics_valid.json", valid)

    return lower
