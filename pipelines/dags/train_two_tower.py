"""Airflow DAG `train_two_tower`: thin tasks over minirec.pipeline.

    validate_data -> build_training_set -> train -> evaluate -> gate
        -> build_index -> register -> materialize -> export_reference

Each task builds the run context from settings and the data interval, so a
run is keyed by its interval end (idempotent: a rerun overwrites the same
run folder and registry version). All logic lives in minirec.pipeline; the
same functions run without Airflow via `python -m minirec.pipeline run`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

STEPS = ["validate_data", "build_training_set", "train", "evaluate", "gate", "build_index", "register",
         "materialize", "export_reference"]


def _run(step: str, data_interval_end=None, params=None) -> dict:
    from minirec.pipeline import RunContext, run_step  # imported in the task, not at parse time

    params = params or {}
    end = params.get("window_end") or (data_interval_end.isoformat() if data_interval_end else None)
    run_id = params.get("run_id") or (
        pendulum.instance(data_interval_end).format("YYYYMMDDTHHmmss") if data_interval_end else "manual")
    train = {"epochs": int(params["epochs"]), "progress": False} if params.get("epochs") else {"progress": False}
    ctx = RunContext.from_settings(run_id=run_id, window_end=end, train=train)
    run_step(step, ctx)
    return {"step": step, "run_id": ctx.run_id, "run_dir": str(ctx.run_dir)}


@dag(
    dag_id="train_two_tower",
    schedule="@weekly",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0},
    params={"epochs": None, "run_id": None, "window_end": None},
    tags=["minirec", "training"],
    doc_md=__doc__,
)
def train_two_tower():
    previous = None
    for step in STEPS:
        @task(task_id=step)
        def run_task(step_name: str = step, data_interval_end=None, params=None) -> dict:
            return _run(step_name, data_interval_end, params)

        current = run_task()
        if previous is not None:
            previous >> current
        previous = current


train_two_tower()
