"""A self-contained serving world for tests and the benchmark.

Builds, in one folder, what the recommender needs to answer for real:
a trained two-tower bundle registered as `production` in a private BentoML
model store, and the user features materialised into a given Redis. It
calls the training pipeline's plain functions (minirec.pipeline) on a small
dataset, so the model, index and online rows are the real artefacts, only
smaller. The quality gate is bypassed on purpose (a tiny model may not beat
the baselines; serving tests need a model, not a good one).

    world = build_world(tmp, redis_host, redis_port, users=400, items=300)
    world.env  # MODEL_STORE_DIR, REDIS_*, FEAST_* for `bentoml serve`
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class World:
    root: Path
    model_store: Path
    feature_repo: Path
    data_dir: Path
    redis_host: str
    redis_port: int
    project: str
    tags: list[str] = field(default_factory=list)  # registered model tags, oldest first
    seconds: float = 0.0

    @property
    def env(self) -> dict[str, str]:
        """Settings overrides that point a recommender process at this world."""
        return {"MODEL_STORE_DIR": str(self.model_store), "REDIS_HOST": self.redis_host,
                "REDIS_PORT": str(self.redis_port), "FEAST_PROJECT": self.project,
                "FEATURE_REPO_DIR": str(self.feature_repo)}

    def users(self) -> pd.DataFrame:
        """user_id and interaction count in the training window (for picking users by activity)."""
        inter = pd.read_parquet(self.data_dir / "interactions.parquet", columns=["user_id", "item_id"])
        return inter.groupby("user_id").size().rename("n").reset_index()

    def seen(self, user_id: int) -> set[int]:
        inter = pd.read_parquet(self.data_dir / "interactions.parquet", columns=["user_id", "item_id"])
        return set(inter.loc[inter["user_id"] == user_id, "item_id"].astype(int))


def _ctx(root: Path, data_dir: Path, repo: Path, store: Path, host: str, port: int, project: str,
         run_id: str, epochs: int, seed: int):
    from minirec.pipeline import RunContext
    from minirec.train.trainer import TrainConfig

    return RunContext(run_id=run_id, data_dir=data_dir, artifacts_dir=root / "artifacts", feature_repo=repo,
                      model_store=store, feast_project=project, redis_host=host, redis_port=port,
                      auto_promote=False, train=TrainConfig(epochs=epochs, patience=epochs, seed=seed,
                                                            progress=False))


def train_version(world: World, run_id: str, *, epochs: int = 2, seed: int = 0, promote: bool = True,
                  materialize: bool = False) -> str:
    """Train and register one more bundle version (optionally promoted to production)."""
    from minirec import pipeline
    from minirec.train import registry

    ctx = _ctx(world.root, world.data_dir, world.feature_repo, world.model_store, world.redis_host,
               world.redis_port, world.project, run_id, epochs, seed)
    for step in ("validate_data", "build_training_set", "train", "train_ranker"):
        pipeline.run_step(step, ctx)
    # gate bypass: a serving fixture needs a model, not a good one
    pipeline.write_json(ctx.run_dir / "gate.json", {"passed": True, "message": "bypassed by loadtests.world"})
    pipeline.run_step("build_index", ctx)
    window = json.loads((ctx.run_dir / "training_set.json").read_text())["window"]
    tag = registry.register(ctx.run_dir / "bundle", store_path=world.model_store, name="two_tower",
                            version=run_id, metadata={"run_id": run_id, "data_window": window,
                                                      "feature_service": "two_tower_v1"},
                            by="loadtests.world", reason="test world (gate bypassed)")
    if promote:
        promote_model(world.model_store, tag)
    if materialize:
        pipeline.run_step("materialize", ctx)
    world.tags.append(tag)
    return tag


def promote_model(store_path: Path, tag: str, reason: str = "test world") -> str:
    """The registry's real promotion path (stage log, previous production archived)."""
    from minirec.train import registry

    return registry.promote(store_path, tag, by="loadtests.world", reason=reason)


def register_copy(world: World, version: str, *, stage: str = "candidate") -> str:
    """Register the first bundle again under a new version (a cheap second model for rollout tests)."""
    from minirec.train import registry

    src = world.root / "artifacts" / "runs" / world.tags[0].split(":")[1] / "bundle"
    tag = registry.register(src, store_path=world.model_store, name="two_tower", version=version,
                            metadata={"run_id": version, "copy_of": world.tags[0]}, by="loadtests.world",
                            reason=f"copy of {world.tags[0]}")
    if stage == "production":
        promote_model(world.model_store, tag)
    world.tags.append(tag)
    return tag


def build_world(root: Path, redis_host: str, redis_port: int, *, users: int = 400, items: int = 300,
                mean_interactions: float = 30.0, epochs: int = 2, project: str = "minirec_test",
                dataset: Path | None = None) -> World:
    """Synthetic data (or `dataset`, a lake folder) -> trained production bundle + features in Redis."""
    from minirec.data.synthetic import SyntheticConfig, generate
    from minirec.features.store import copy_repo

    t0 = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    data_dir = dataset or root / "data"
    if dataset is None:
        generate(SyntheticConfig(n_users=users, n_items=items, mean_interactions=mean_interactions, days=120,
                                 seed=0), data_dir)
    repo = copy_repo(root / "feature_repo")
    world = World(root=root, model_store=root / "bentoml", feature_repo=repo, data_dir=data_dir,
                  redis_host=redis_host, redis_port=redis_port, project=project)
    train_version(world, "v1", epochs=epochs, seed=0, promote=True, materialize=True)
    import redis

    from services.recommender.features import backfill_seen

    client = redis.Redis(host=redis_host, port=redis_port)
    backfill_seen(client, project, pd.read_parquet(data_dir / "interactions.parquet", columns=["user_id", "item_id"]))
    client.close()
    world.seconds = round(time.perf_counter() - t0, 1)
    return world
