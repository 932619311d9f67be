"""Airflow DAG `train_two_tower`: thin tasks over minirec.pipeline, one per row of its step table.

    validate_data -> build_training_set -> train -> train_ranker -> evaluate -> gate -> build_index
        -> register -> materialize -> backfill_seen -> promote -> export_reference

Every task of one DAG run computes the same run id, from the DAG run's id
and start (`minirec.pipeline.new_run_id(seed=...)`), so each DAG run gets its
own run folder and registry version, and a retried task reuses them.
`params.run_id` overrides it; `params.protocol` (fixed | rolling) overrides
TRAIN_PROTOCOL (the drift monitor's retrain asks for rolling). All logic lives in minirec.pipeline; the same
functions run without Airflow via `python -m minirec.pipeline run`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from minirec.pipeline.steps import STEPS  # the step table; importing it loads no step


def _run(step: str, data_interval_end=None, params=None, dag_run=None) -> dict:
    # imported in the task, not at parse time
    from minirec.pipeline import RunContext, new_run_id, run_step

    params = params or {}
    end = params.get("window_end") or (data_interval_end.isoformat() if data_interval_end else None)
    run_id = params.get("run_id")
    if not run_id:
        started = getattr(dag_run, "run_after", None) or getattr(dag_run, "start_date", None) or pendulum.now("UTC")
        run_id = new_run_id(seed=str(getattr(dag_run, "run_id", started)), now=pendulum.instance(started))
    train = {"epochs": int(params["epochs"]), "progress": False} if params.get("epochs") else {"progress": False}
    over = {"protocol": params["protocol"]} if params.get("protocol") else {}  # fixed | rolling; default .env
    ctx = RunContext.from_settings(run_id=run_id, window_end=end, train=train, promoted_by="airflow", **over)
    run_step(step, ctx)
    return {"step": step, "run_id": ctx.run_id, "run_dir": str(ctx.run_dir)}


@dag(
    dag_id="train_two_tower",
    schedule="@weekly",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0},
    params={"epochs": None, "run_id": None, "window_end": None, "protocol": None},
    tags=["minirec", "training"],
    doc_md=__doc__,
)
def train_two_tower():
    previous = None
    for step in STEPS:
        @task(task_id=step)
        def run_task(step_name: str = step, data_interval_end=None, params=None, dag_run=None) -> dict:
            return _run(step_name, data_interval_end, params, dag_run)

        current = run_task()
        if previous is not None:
            previous >> current
        previous = current


train_two_tower()
