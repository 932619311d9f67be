"""One real training run shared by the tests that need one (the suite's slowest part, ~2 min on 2 cores).

    run = dag_pipeline_run(tmp, redis, lake)   # `airflow dags test train_two_tower` with default settings
    run.returncode, run.output                 # what Airflow said
    run.ctx                                    # a RunContext on the same folders: run_dir, latest_dir, model store

The DAG test checks the orchestration (every task ran, the gate passed, the model was promoted) and
the model-quality test checks the numbers of the same run: one pipeline run instead of two, and the
quality numbers are those of the path a scheduled retrain takes. Used through the session fixture
`pipeline_run` (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minirec.settings import REPO_ROOT

DAGS = REPO_ROOT / "pipelines" / "dags"
AIRFLOW = str(Path(sys.executable).parent / "airflow")
RUN_ID = "pipeline"  # the run folder and the registry version of the shared run


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of an airflow CLI call with its own AIRFLOW_HOME (airflow reads config at import)."""
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS), "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    env.update(extra)
    return env


@dataclass
class PipelineRun:
    returncode: int
    output: str  # the tail of airflow's stdout + stderr
    ctx: Any  # minirec.pipeline.RunContext on the run's folders


def dag_pipeline_run(root: Path, redis_host: str, redis_port: int, lake: Path) -> PipelineRun:
    """`airflow db migrate` then `airflow dags test train_two_tower` (default epochs) in folders under root."""
    from minirec.features.store import copy_repo
    from minirec.pipeline import RunContext

    project = f"dag{uuid.uuid4().hex[:6]}"
    repo = copy_repo(root / "feature_repo")
    env = airflow_env(root / "airflow", DATA_DIR=str(lake.parent), ARTIFACTS_DIR=str(root / "artifacts"),
                      MODEL_STORE_DIR=str(root / "bentoml"), FEATURE_REPO_DIR=str(repo), FEAST_PROJECT=project,
                      REDIS_HOST=redis_host, REDIS_PORT=str(redis_port))
    ctx = RunContext.from_settings(run_id=RUN_ID, data_dir=lake, artifacts_dir=root / "artifacts", feature_repo=repo,
                                   model_store=root / "bentoml", feast_project=project, redis_host=redis_host,
                                   redis_port=redis_port, train={"progress": False})
    migrate = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    if migrate.returncode != 0:
        return PipelineRun(migrate.returncode, "airflow db migrate: " + migrate.stderr[-3000:], ctx)
    conf = json.dumps({"run_id": RUN_ID})
    proc = subprocess.run([AIRFLOW, "dags", "test", "train_two_tower", "2024-01-08", "-c", conf],
                          env=env, capture_output=True, text=True, timeout=1500, cwd=root)
    return PipelineRun(proc.returncode, (proc.stdout + proc.stderr)[-4000:], ctx)
