"""The drift DAG parses and has its one task (the work itself is `monitoring.drift once`, tested elsewhere)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from minirec.settings import REPO_ROOT

PARSE = """
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=%r)
dag = bag.dags.get("drift_monitor")
print(json.dumps({"errors": {str(k): str(v) for k, v in bag.import_errors.items()},
                  "tasks": [t.task_id for t in dag.tasks] if dag else None,
                  "schedule": str(dag.schedule) if dag else None}))
"""


def test_drift_dag_parses(tmp_path):
    dags = REPO_ROOT / "pipelines" / "dags"
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    proc = subprocess.run([sys.executable, "-c", PARSE % str(dags)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["errors"] == {} and got["tasks"] == ["compare_windows"]
    assert "0:05:00" in got["schedule"] or "300" in got["schedule"]
