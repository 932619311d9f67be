"""What every step shares: the run context, run ids, run-folder I/O and the split.

A run lives in `artifacts/runs/<run_id>/`; each step reads what earlier steps
wrote there and writes its own outputs, so a step can be rerun alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from minirec.settings import REPO_ROOT, get_settings
from minirec.train.trainer import TrainConfig

MODEL_KEY = "two_tower"  # the model as served
MODEL_VIEWS = ("retrieval_only", "learned_only")  # parts of the candidate, evaluated beside it (never baselines)
BASELINES = ("most_popular", "recent_popular", "item_knn", "als_mf")


class PipelineError(RuntimeError):
    """A step cannot run; the message says why and what to do."""


def new_run_id(seed: str | None = None, now: datetime | None = None) -> str:
    """`YYYYMMDD-HHMMSS-<6 hex>` (UTC): sortable, unique, a valid BentoML version.

    `seed` (e.g. an Airflow dag-run id) makes the id reproducible, so every
    task of one DAG run computes the same id; without it the hash is random.
    """
    now = now or datetime.now(UTC)
    basis = seed if seed is not None else f"{now.isoformat()}-{os.getpid()}-{uuid.uuid4()}"
    return f"{now:%Y%m%d-%H%M%S}-{hashlib.sha256(basis.encode()).hexdigest()[:6]}"


@dataclass
class RunContext:
    run_id: str
    data_dir: Path  # lake folder with users/items/interactions.parquet
    artifacts_dir: Path
    feature_repo: Path  # the live Feast repo (materialised into Redis)
    model_store: Path
    feast_project: str
    redis_host: str
    redis_port: int
    model_name: str = "two_tower"
    window_end: str | None = None  # ISO time; interactions at or after it are ignored
    gate_tolerance: float = 0.005
    valid_frac: float = 0.1
    test_frac: float = 0.1
    auto_promote: bool = True  # promote when the gate passed; False leaves a candidate
    promoted_by: str = "pipeline"  # who the stage log records for the promotion
    protocol: str = "fixed"  # fixed (base only, the benchmark) | rolling (base + lake); see protocol.py
    lake_dir: Path | None = None  # the stream's event lake, read by the rolling protocol only
    tracking_uri: str = ""  # MLflow tracking store (tracking.py); empty = not tracked
    offline_engine: str = "pandas"  # point-in-time join of build_training_set: pandas | feast | spark
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def run_dir(self) -> Path:
        return self.artifacts_dir / "runs" / self.run_id

    @property
    def latest_dir(self) -> Path:
        return self.artifacts_dir / "latest"

    @property
    def run_repo(self) -> Path:
        """A private copy of the Feast repo for this run (offline tables + registry)."""
        return self.run_dir / "feature_repo"

    @classmethod
    def from_settings(cls, run_id: str | None = None, window_end: str | None = None, **overrides: Any) -> RunContext:
        s = get_settings()
        ctx = cls(run_id=run_id or new_run_id(), data_dir=s.data_path / "ml-100k", artifacts_dir=s.artifacts_path,
                  feature_repo=s.feature_repo_path, model_store=s.model_store_path,
                  feast_project=s.feast_project, redis_host=s.redis_host, redis_port=s.redis_port,
                  model_name=s.model_name, window_end=window_end, gate_tolerance=s.gate_tolerance,
                  protocol=s.train_protocol, lake_dir=s.stream_lake_path, tracking_uri=s.mlflow_tracking_uri,
                  offline_engine=s.offline_engine)
        train_over = overrides.pop("train", None)
        ctx = replace(ctx, **overrides)
        if train_over:
            ctx.train = replace(ctx.train, **train_over) if isinstance(train_over, dict) else train_over
        return ctx

    def store(self, repo: Path | None = None):
        from minirec.features.store import open_store

        return open_store(repo or self.run_repo, project=self.feast_project,
                          redis_host=self.redis_host, redis_port=self.redis_port)


# ---------------------------------------------------------------- run-folder I/O
def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    tmp.replace(path)


def read_json(path: Path) -> Any:
    if not path.exists():
        raise PipelineError(f"{path} is missing: run the earlier pipeline steps first "
                            "(`python -m minirec.pipeline run`)")
    return json.loads(path.read_text())


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except Exception:
        return "unknown"


def load_run_tables(ctx: RunContext) -> dict[str, pd.DataFrame]:
    """users/items from the lake, interactions cut to the run's window (validate_data's output)."""
    from minirec.data.movielens import load

    tables = load(ctx.data_dir)
    path = ctx.run_dir / "interactions.parquet"
    if not path.exists():
        raise PipelineError(f"{path} is missing: run validate_data first")
    tables["interactions"] = pd.read_parquet(path)
    return tables


def split_of(ctx: RunContext, tables: dict[str, pd.DataFrame]):
    from minirec.train.split import temporal_split

    return temporal_split(tables["interactions"], ctx.valid_frac, ctx.test_frac)


def catalogue(tables: dict[str, pd.DataFrame]):
    from minirec.train.evaluate import Catalogue

    return Catalogue.from_tables(tables["items"], tables["users"], tables["interactions"])


def frames(ctx: RunContext, *names: str) -> list[pd.DataFrame]:
    """Point-in-time feature frames that build_training_set wrote."""
    paths = [ctx.run_dir / "frames" / f"{n}.parquet" for n in names]
    for p in paths:
        if not p.exists():
            raise PipelineError(f"{p} is missing: run build_training_set first")
    return [pd.read_parquet(p) for p in paths]


def eval_sets(split, cat):
    """(validation, test) evaluation sets: history before each cut, targets after it."""
    from minirec.train.evaluate import make_eval_set

    valid = make_eval_set(split.train, split.valid, split.cut_valid, cat)
    test = make_eval_set(pd.concat([split.train, split.valid]), split.test, split.cut_test, cat)
    return valid, test


HOLDOUT = "model_holdout"  # run_dir/<HOLDOUT>: the towers trained on the train period only


def holdout_dir(ctx: RunContext) -> Path:
    """The towers trained on the train period only (training.py saves them beside the served, refit
    ones): every validation number comes from them. A run without a refit has only `model`."""
    d = ctx.run_dir / HOLDOUT
    return d if (d / "model.pt").exists() else ctx.run_dir / "model"


def tower_scores(model, users: pd.DataFrame, items: pd.DataFrame, user_ids: np.ndarray,
                 item_ids: np.ndarray, pop_weight: float | None = None) -> np.ndarray:
    """(U_e, M) retrieval scores for `user_ids` from feature frames (rows in catalogue order).

    Ids outside the model's vocabulary get its 'unknown' embedding, so any
    registered model can be scored on any run's frames (the gate relies on it)."""
    from minirec.model.two_tower import item_vectors, user_vectors

    rows = users.set_index("user_id").loc[user_ids].reset_index()
    q = user_vectors(model, rows, user_ids)  # (U_e, d+1)
    if pop_weight is not None:
        q[:, -1] = pop_weight
    return q @ item_vectors(model, items, item_ids).T
