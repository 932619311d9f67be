"""The Airflow DAG parses, wires the step table in order, and `airflow dags test` succeeds."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from minirec.pipeline import STEPS
from minirec.train.registry import history
from tests.pipeline_run import DAGS, RUN_ID, airflow_env

PARSE = """
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=%r)
dag = bag.dags.get("train_two_tower")
print(json.dumps({"errors": {str(k): str(v) for k, v in bag.import_errors.items()},
                  "tasks": {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks} if dag else None}))
"""


def test_dag_imports_and_wires_the_steps_in_order(tmp_path):
    # parse in a fresh interpreter with its own AIRFLOW_HOME (airflow reads its config at import)
    proc = subprocess.run([sys.executable, "-c", PARSE % str(DAGS)], env=airflow_env(tmp_path / "airflow"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["errors"] == {}
    assert got["tasks"] is not None and set(got["tasks"]) == set(STEPS)
    for up, down in zip(STEPS[:-1], STEPS[1:], strict=True):
        assert got["tasks"][up] == [down]
    assert got["tasks"][STEPS[-1]] == []


@pytest.mark.slow
def test_airflow_dags_test_runs_the_pipeline(pipeline_run):
    # the session's shared run (tests/pipeline_run.py): default settings, so the gate passes and the
    # model is promoted; tests/pipeline/test_gate.py covers a gate that stops the run
    assert pipeline_run.returncode == 0, pipeline_run.output
    run_dir = pipeline_run.ctx.run_dir
    for name in ("validate.json", "training_set.json", "train.json", "ranker.json", "metrics.json", "gate.json",
                 "ann.json", "register.json", "materialize.json", "backfill_seen.json", "promote.json",
                 "reference/features.parquet"):
        assert (run_dir / name).exists(), name
    assert json.loads((run_dir / "promote.json").read_text())["promoted"] is True
    ctx = pipeline_run.ctx
    last = history(ctx.model_store, ctx.model_name)[-1]  # the stage log's newest line: the DAG's promotion
    assert (last["tag"], last["stage"], last["by"]) == (f"{ctx.model_name}:{RUN_ID}", "production", "airflow")
    assert (pipeline_run.ctx.latest_dir / "metrics.json").exists()
