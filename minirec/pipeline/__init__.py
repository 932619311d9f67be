"""The training pipeline: one module per step, plain functions, one step table.

    validate_data -> build_training_set -> train -> train_ranker -> evaluate -> gate -> build_index
        -> register -> materialize -> backfill_seen -> promote -> export_reference

Every step reads and writes one run folder, `artifacts/runs/<run_id>/`; a run
id is `YYYYMMDD-HHMMSS-<hash>` (UTC), new for every run, so no two runs share
a folder or a registry version. Nothing reaches the live Feast repo, Redis or
the registry before the gate has passed, and production changes only in the
promote step (see release.py for the order). The same functions run under
Airflow (pipelines/dags/train_two_tower.py) and without it:

    python -m minirec.pipeline run                     # whole pipeline (`make train`)
    python -m minirec.pipeline step train --run-id X   # one step of run X
    python -m minirec.pipeline promote two_tower:X     # promote by hand (recorded)
    python -m minirec.pipeline models                  # registry entries and stages
    python -m minirec.pipeline mlflow                  # MLflow UI over the tracked runs (`make mlflow`)

Attributes (steps, RunContext, ...) load on first use, so importing the
package, e.g. for the step table, stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RunContext": "context", "PipelineError": "context", "MODEL_KEY": "context", "new_run_id": "context",
    "HOLDOUT": "context",
    "write_json": "context", "read_json": "context", "tower_scores": "context",
    "STEPS": "steps", "STEP_TABLE": "steps", "run": "steps", "run_step": "steps",
    "validate_data": "data", "build_training_set": "data", "train": "training",
    "train_ranker": "ranking", "evaluate": "evaluation",
    "gate": "gating", "build_index": "index", "register": "release", "materialize": "release",
    "backfill_seen": "release", "promote": "release", "export_reference": "reference",
    "publish_latest": "reference", "main": "cli",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"minirec.pipeline.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'minirec.pipeline' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
