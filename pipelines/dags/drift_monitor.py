"""Airflow DAG `drift_monitor`: the drift job's `once` every 5 minutes (the same work as `make drift-once`).

    compare_windows: python -m monitoring.drift once  (every closed lake window not handled yet:
                     Evidently vs the training reference, workspace, HTML, audit; trigger per
                     DRIFT_TRIGGER_MODE: "job" lets this run start the training DAG itself)

The task runs the CLI in a subprocess, so this file imports nothing beyond Airflow
(DAG files stay thin; the logic lives in monitoring/drift). The loop (`make drift`)
is the other way to run the same job; run one of the two, not both: they share
the watermark in DRIFT_DIR/state.json.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task


@dag(
    dag_id="drift_monitor",
    schedule=timedelta(minutes=5),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0},
    tags=["minirec", "monitoring"],
    doc_md=__doc__,
)
def drift_monitor():
    @task(task_id="compare_windows")
    def compare_windows() -> str:
        import os
        import subprocess
        import sys

        env = {**os.environ, "DO_NOT_TRACK": "1"}  # Evidently's telemetry stays off
        proc = subprocess.run([sys.executable, "-m", "monitoring.drift", "once"], capture_output=True, text=True,
                              env=env, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"drift once exited {proc.returncode}: {proc.stderr[-2000:]}")
        return proc.stdout[-5000:]

    compare_windows()


drift_monitor()
