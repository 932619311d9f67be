"""The step table: the one list of pipeline steps, in order, that the CLI and the DAG read.

Importing this module is cheap (no step module is imported until a step
runs), so the Airflow DAG can read the table at parse time.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Step:
    name: str
    module: str  # minirec.pipeline.<module> holds a function called `name`
    doc: str


STEP_TABLE: tuple[Step, ...] = (
    Step("validate_data", "data", "check the lake tables, cut the data window"),
    Step("build_training_set", "data", "feature tables -> private Feast repo -> point-in-time frames"),
    Step("train", "training", "two-tower with early stopping; popularity weight on validation"),
    Step("train_ranker", "ranking", "LightGBM LambdaRank on the top-100 candidates, validation-period labels"),
    Step("evaluate", "evaluation", "two-tower and tuned baselines on validation and test"),
    Step("gate", "gating", "beat the best baseline; not worse than production re-scored here"),
    Step("build_index", "index", "item vectors at the release cut, FAISS HNSW, the bundle"),
    Step("register", "release", "the bundle into the registry as the candidate"),
    Step("materialize", "release", "feature tables to the live repo, Redis up to the cut"),
    Step("backfill_seen", "release", "seen-sets before the cut into Redis"),
    Step("promote", "release", "candidate -> production, recorded with who and why"),
    Step("export_reference", "reference", "drift reference; publish artifacts/latest"),
)
STEPS: tuple[str, ...] = tuple(s.name for s in STEP_TABLE)


def step_function(name: str) -> Callable[[Any], dict[str, Any]]:
    from minirec.pipeline.context import PipelineError

    for s in STEP_TABLE:
        if s.name == name:
            return getattr(importlib.import_module(f"minirec.pipeline.{s.module}"), s.name)
    raise PipelineError(f"unknown step {name}; steps are {', '.join(STEPS)}")


def run_step(name: str, ctx) -> dict[str, Any]:
    """One step; its outcome is logged to MLflow (tracking.py: never raises, off without a URI)."""
    from minirec.pipeline import tracking

    fn = step_function(name)
    t0 = time.perf_counter()
    try:
        out = fn(ctx)
    except BaseException as exc:
        tracking.step_failed(ctx, name, exc)
        raise
    print(f"[{name}] done in {time.perf_counter() - t0:.1f} s (run {ctx.run_id})", file=sys.stderr)
    tracking.step_done(ctx, name, out, time.perf_counter() - t0)
    return out


def run(ctx, steps: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
    """Run steps in table order (all by default); stops at the first failure."""
    return {name: run_step(name, ctx) for name in (steps or STEPS)}
