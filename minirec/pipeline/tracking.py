"""Experiment tracking: every pipeline run is one MLflow run, linked both ways with its registry entry.

One MLflow run per pipeline run, in the experiment named after the model (`two_tower`):

    run name, tag minirec.run_id   the pipeline run id YYYYMMDD-HHMMSS-<hash>: the run folder
                                   artifacts/runs/<id>/ and the registry version two_tower:<id>
    params     the run context: protocol, model_name, valid_frac, test_frac, gate_tolerance,
               window_end, auto_promote; train.* (TrainConfig: epochs, lr, seed, user_encoder, ...);
               data.* (validate_data: interactions, users, items, first and last event) and the data
               window window.* (start, cut_valid, cut_test, end) with rows.train/valid/test
    metrics    epoch/<key> once per epoch (MLflow step = epoch): epoch/loss, epoch/valid_ndcg_at_10;
               every number a step returns, as <step>/<path> (the evaluate step's as test/<model>/...,
               valid/<model>/..., comparison/...); step_seconds/<step>. '@' reads '_at_' (MLflow names
               allow no '@')
    artifacts  every .json, .png and .md file the steps write at the top of the run folder, uploaded
               when new or changed: metrics.json, comparison.json, results.md, results.png,
               training_curve.png, training_set.json, gate.json, ... (the model itself lives in the
               BentoML store, the registry serving reads; it is not copied here)
    tags       mlflow.source.git.commit ("unknown" without git), minirec.registry_tag
               (two_tower:<id>, after register), minirec.gate, minirec.stage, minirec.failed_step

The registry entry gets the label `mlflow_run_id` = that run's id (registry_labels, called by
release.register). MLflow's tracking store chooses its run ids itself (32 hex digits), so the two
ids name each other: the registry version is the MLflow run's name, and the MLflow run id is a
label of the registry entry. The version itself stays the pipeline run id: it is seeded per Airflow
DAG run, sorts by time, and is the model_version of every Impression event.

Status: RUNNING until the last step of the step table returns (FINISHED), or a step raises (FAILED;
KILLED on Ctrl-C). Under Airflow every task is a process of its own, so a step finds the run again
through the run folder's tracking.json or the minirec.run_id tag.

Tracking never breaks training: every MLflow call is guarded; a failure logs a warning and is
counted (FAILURES in this process, `failures` in the run folder's tracking.json); when the store
cannot be opened at all, this process stops trying for that store. HTTP stores get 2 retries and a
10 s timeout (MLflow's default, 7 retries with exponential backoff, stalls a step for minutes).
Importing this module is cheap: mlflow is imported only when a run is tracked.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minirec.settings import REPO_ROOT

if TYPE_CHECKING:
    from minirec.pipeline.context import RunContext
    from minirec.settings import Settings

log = logging.getLogger(__name__)

RUN_TAG = "minirec.run_id"
REGISTRY_TAG = "minirec.registry_tag"
LABEL = "mlflow_run_id"  # the registry entry's label naming its MLflow run
STATE_FILE = "tracking.json"  # in the run folder: MLflow run id, failures, uploaded files
ARTIFACT_SUFFIXES = (".json", ".png", ".md")
SQLITE = "sqlite:///"
NOT_METRICS = {"train": ("history", "train_config")}  # step outputs logged otherwise (epochs, params)
BATCH = {"metrics": 1000, "params": 100}  # MLflow's log_batch limits per call
# `mlflow server` 3.x also starts job consumers (huey, 7 processes, for GenAI scorers) that outlive a
# stopped server; the UI over training runs needs none of them
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}

FAILURES: Counter[str] = Counter()  # operation -> failed MLflow calls in this process
_RUNS: dict[tuple[str, str], str] = {}  # (store URI, pipeline run id) -> MLflow run id
_CLIENTS: dict[str, Any] = {}  # store URI -> MlflowClient
_BROKEN: set[str] = set()  # stores that could not be opened in this process


class TrackingError(RuntimeError):
    """`make mlflow` cannot serve a UI for this configuration; the message says why."""


# ---------------------------------------------------------------- configuration
def resolve_uri(uri: str) -> str:
    """A relative sqlite path -> absolute under the repo root; other URIs unchanged; '' = off."""
    uri = (uri or "").strip()
    if uri.startswith(SQLITE) and not uri[len(SQLITE):].startswith("/"):
        return SQLITE + str(REPO_ROOT / uri[len(SQLITE):])
    return uri


def artifact_root(uri: str) -> Path | None:
    """Artifacts of a sqlite store live beside its database; a tracking server decides its own (None)."""
    uri = resolve_uri(uri)
    return Path(uri[len(SQLITE):]).parent / "artifacts" if uri.startswith(SQLITE) else None


def server_argv(s: Settings) -> list[str]:
    """`mlflow server` over the configured sqlite store, on MLFLOW_HOST:MLFLOW_PORT (`make mlflow`);
    run it with SERVER_ENV added to the environment."""
    uri = resolve_uri(s.mlflow_tracking_uri)
    if not uri:
        raise TrackingError("MLFLOW_TRACKING_URI is empty: tracking is off, there is no store to show")
    root = artifact_root(uri)
    if root is None:
        raise TrackingError(f"MLFLOW_TRACKING_URI is {uri}: runs go to that server; open its UI there")
    exe = Path(sys.executable).with_name("mlflow")
    return [str(exe), "server", "--backend-store-uri", uri, "--default-artifact-root", root.as_uri(),
            "--no-serve-artifacts", "--host", s.mlflow_host, "--port", str(s.mlflow_port), "--workers", "1"]


def metric_name(key: str) -> str:
    """MLflow names allow alphanumerics, _ - . space : / only: 'ndcg@10' -> 'ndcg_at_10'."""
    return re.sub(r"[^\w.\- :/]", "_", key.replace("@", "_at_"))


def flatten(obj: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested dicts -> {'a/b/c': value}; strings, lists and None are skipped."""
    out: dict[str, float] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{metric_name(str(k))}/"))
    elif isinstance(obj, bool | int | float) and prefix:
        out[prefix[:-1]] = float(obj)
    return out


# ---------------------------------------------------------------- the pipeline's hooks (never raise)
def step_done(ctx: RunContext, name: str, out: Any, seconds: float) -> None:
    """After a step returned: its params, metrics, tags and new files; FINISHED after the last step."""
    from minirec.pipeline.steps import STEPS

    if not resolve_uri(ctx.tracking_uri):  # off
        return
    with _session(ctx) as (client, run_id, state):
        if client is None:
            return
        with _guard(state, f"log {name}"):
            _log_step(client, run_id, ctx, name, out if isinstance(out, dict) else {}, seconds)
        _upload_new(client, run_id, ctx, state)
        if name == STEPS[-1]:
            with _guard(state, "finish"):
                client.set_terminated(run_id, "FINISHED")


def step_failed(ctx: RunContext, name: str, exc: BaseException) -> None:
    """A step raised: the run ends FAILED (KILLED on Ctrl-C), with the step and the error as tags."""
    if not resolve_uri(ctx.tracking_uri):  # off
        return
    with _session(ctx) as (client, run_id, state):
        if client is None:
            return
        _upload_new(client, run_id, ctx, state)
        with _guard(state, "fail"):
            client.set_tag(run_id, "minirec.failed_step", name)
            client.set_tag(run_id, "minirec.error", f"{type(exc).__name__}: {exc}"[:5000])
            client.set_terminated(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")


def registry_labels(ctx: RunContext) -> dict[str, str]:
    """Labels for the registry entry of this run: {'mlflow_run_id': id}, or {} when not tracked."""
    if not resolve_uri(ctx.tracking_uri):  # off
        return {}
    with _session(ctx) as (client, run_id, _):
        return {LABEL: run_id} if client is not None else {}
    return {}  # the session swallowed an error


# ---------------------------------------------------------------- what one step logs
def _log_step(client, run_id: str, ctx: RunContext, name: str, out: dict[str, Any], seconds: float) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(f"step_seconds/{name}", float(seconds), now, 0)]
    params: dict[str, Any] = {}
    tags: dict[str, str] = {}
    if name == "train":
        for row in out.get("history", []):
            metrics += [Metric(f"epoch/{metric_name(k)}", float(v), now, int(row["epoch"]))
                        for k, v in row.items() if k != "epoch" and isinstance(v, int | float)]
    elif name == "validate_data":
        params.update({f"data.{k}": v for k, v in out.items() if k != "run_id" and not isinstance(v, dict | list)})
    elif name == "build_training_set":
        params.update({f"window.{k}": v for k, v in out.get("window", {}).items()})
        params.update({f"rows.{k}": v for k, v in out.get("split_sizes", {}).items()})
    elif name == "gate" and "message" in out:
        tags["minirec.gate"] = str(out["message"])
    elif name == "register" and "tag" in out:
        tags[REGISTRY_TAG] = str(out["tag"])
    elif name == "promote" and "promoted" in out:
        tags["minirec.stage"] = "production" if out["promoted"] else "candidate"
    numbers = {k: v for k, v in out.items() if k not in NOT_METRICS.get(name, ())}
    prefix = "" if name == "evaluate" else f"{name}/"  # evaluate's outputs are the results table itself
    metrics += [Metric(k, v, now, 0) for k, v in flatten(numbers, prefix).items()]
    _log_batch(client, run_id, metrics=metrics, params=params, tags=tags)


def _log_batch(client, run_id: str, metrics=(), params: dict[str, Any] | None = None,
               tags: dict[str, str] | None = None) -> None:
    from mlflow.entities import Param, RunTag

    plist = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
    for i in range(0, len(metrics), BATCH["metrics"]):
        client.log_batch(run_id, metrics=metrics[i:i + BATCH["metrics"]])
    for i in range(0, len(plist), BATCH["params"]):
        client.log_batch(run_id, params=plist[i:i + BATCH["params"]])
    if tags:
        client.log_batch(run_id, tags=[RunTag(k, v[:5000]) for k, v in tags.items()])


def _upload_new(client, run_id: str, ctx: RunContext, state: dict[str, Any]) -> None:
    """Upload the run folder's top-level results that are new or changed since the last upload."""
    uploaded = state.setdefault("uploaded", {})
    if not ctx.run_dir.is_dir():
        return
    for path in sorted(ctx.run_dir.iterdir()):
        if not path.is_file() or path.suffix not in ARTIFACT_SUFFIXES or path.name == STATE_FILE:
            continue
        stamp = path.stat().st_mtime_ns
        if uploaded.get(path.name) != stamp:
            with _guard(state, f"upload {path.name}"):
                client.log_artifact(run_id, str(path))
                uploaded[path.name] = stamp


# ---------------------------------------------------------------- finding (or creating) the run
@contextmanager
def _session(ctx: RunContext) -> Iterator[tuple[Any, str, dict[str, Any]]]:
    """(client, MLflow run id, state) for this pipeline run, or (None, '', state) when the store is
    unavailable; the run folder's tracking.json is saved afterwards. Nothing escapes but the caller's
    own exceptions, and those are caught too (a warning, counted)."""
    state: dict[str, Any] = {}
    client, run_id = None, ""
    try:
        state = _load_state(ctx)
        client, run_id = _open(ctx, state)
    except Exception as exc:
        _record(state, "open", exc)
    try:
        yield client, run_id, state
    except Exception as exc:  # tracking must never fail a step
        _record(state, "session", exc)
    finally:
        try:
            from minirec.pipeline.context import write_json

            if state:
                write_json(ctx.run_dir / STATE_FILE, state)
        except Exception as exc:
            _record({}, "state file", exc)


def _open(ctx: RunContext, state: dict[str, Any]) -> tuple[Any, str]:
    uri = resolve_uri(ctx.tracking_uri)
    if uri in _BROKEN:
        FAILURES["skipped"] += 1
        state["skipped"] = state.get("skipped", 0) + 1
        return None, ""
    key = (uri, ctx.run_id)
    try:
        client = _client(uri)
        run_id = _RUNS.get(key) or (state.get("mlflow_run_id") if state.get("uri") == uri else None)
        if not run_id:
            run_id = _find_or_create(client, ctx, uri)
    except Exception as exc:
        _BROKEN.add(uri)
        _record(state, "open", exc)
        return None, ""
    _RUNS[key] = run_id
    state.update({"uri": uri, "mlflow_run_id": run_id})
    return client, run_id


def _client(uri: str):
    if uri not in _CLIENTS:
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        from mlflow import MlflowClient

        _CLIENTS[uri] = MlflowClient(tracking_uri=uri)
    return _CLIENTS[uri]


def _find_or_create(client, ctx: RunContext, uri: str) -> str:
    """The MLflow run tagged with this pipeline run id; created (with the run's params) when absent."""
    from minirec.pipeline.context import git_commit

    exp = client.get_experiment_by_name(ctx.model_name)
    if exp is None:
        root = artifact_root(uri)
        try:
            client.create_experiment(ctx.model_name,
                                     artifact_location=(root / ctx.model_name).as_uri() if root else None)
        except Exception:  # another process created it meanwhile; anything else fails below
            pass
        exp = client.get_experiment_by_name(ctx.model_name)
        if exp is None:
            raise RuntimeError(f"experiment {ctx.model_name} could not be created in {uri}")
    found = client.search_runs([exp.experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{ctx.run_id}'",
                               max_results=1)
    if found:
        return found[0].info.run_id
    run = client.create_run(exp.experiment_id, run_name=ctx.run_id, tags={
        RUN_TAG: ctx.run_id, "mlflow.source.git.commit": git_commit(), "mlflow.source.name": "minirec.pipeline",
        "minirec.run_dir": str(ctx.run_dir)})
    params = {"protocol": ctx.protocol, "model_name": ctx.model_name, "valid_frac": ctx.valid_frac,
              "test_frac": ctx.test_frac, "gate_tolerance": ctx.gate_tolerance, "window_end": ctx.window_end,
              "auto_promote": ctx.auto_promote, **{f"train.{k}": v for k, v in asdict(ctx.train).items()}}
    _log_batch(client, run.info.run_id, params=params)
    return run.info.run_id


# ---------------------------------------------------------------- state and failures
def _load_state(ctx: RunContext) -> dict[str, Any]:
    """tracking.json of this run (a copied run folder's file belongs to another run: ignored)."""
    import json

    path = ctx.run_dir / STATE_FILE
    try:
        state = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        state = {}
    if state.get("run_id") != ctx.run_id:
        state = {}
    return {"run_id": ctx.run_id, "failures": 0, **state}


@contextmanager
def _guard(state: dict[str, Any], op: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        _record(state, op, exc)


def _record(state: dict[str, Any], op: str, exc: Exception) -> None:
    FAILURES[op.split(" ", 1)[0]] += 1
    state["failures"] = state.get("failures", 0) + 1
    state["errors"] = [*state.get("errors", [])[-4:], f"{op}: {type(exc).__name__}: {exc}"[:500]]
    log.warning("experiment tracking: %s failed (%s: %s); training goes on", op, type(exc).__name__,
                str(exc)[:300])
