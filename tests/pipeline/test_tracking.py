"""Experiment tracking: a pipeline run is one MLflow run (params, per-epoch history, results, plots,
data window, commit) that names its registry entry and is named by it; a broken store never fails
training. Stores are sqlite files in tmp; the module's run is the synthetic lake, 2 epochs."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import pytest

from minirec import pipeline as P
from minirec.pipeline import tracking as T
from minirec.settings import REPO_ROOT, Settings
from minirec.train import registry as R


def _store_uri(root: Path) -> str:
    return f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"


def _ctx(root: Path, synthetic_lake: Path, run_id: str, uri: str, epochs: int = 2) -> P.RunContext:
    from minirec.features.store import copy_repo

    return P.RunContext.from_settings(
        run_id=run_id, data_dir=synthetic_lake, artifacts_dir=root / "artifacts",
        feature_repo=copy_repo(root / "feature_repo"), model_store=root / "bentoml", feast_project="ttrack",
        redis_host="127.0.0.1", redis_port=1, tracking_uri=uri, train={"epochs": epochs, "progress": False})


def _forget_the_process() -> None:
    """What a new process (an Airflow task) starts from: no cached client or run id."""
    T._RUNS.clear()
    T._CLIENTS.clear()
    T._BROKEN.clear()


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, synthetic_lake, pass_the_baseline_rule):
    """validate_data .. evaluate in one process; gate, build_index, register in another (the run found
    again by its tag: tracking.json removed); returns (ctx, client, the experiment's runs)."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("tracked")
    ctx = _ctx(root, synthetic_lake, "20260101-000000-aaaaaa", _store_uri(root))
    P.run(ctx, ["validate_data", "build_training_set", "train", "evaluate"])
    pass_the_baseline_rule(ctx)
    _forget_the_process()
    (ctx.run_dir / T.STATE_FILE).unlink()
    P.run(ctx, ["gate", "build_index", "register"])
    client = MlflowClient(tracking_uri=ctx.tracking_uri)
    exp = client.get_experiment_by_name(ctx.model_name)
    return ctx, client, client.search_runs([exp.experiment_id])


def _read(ctx, name):
    return json.loads((ctx.run_dir / name).read_text())


def test_a_pipeline_run_is_exactly_one_mlflow_run(tracked):
    ctx, _, runs = tracked
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_name == ctx.run_id and run.data.tags[T.RUN_TAG] == ctx.run_id
    assert run.info.status == "RUNNING"  # the last step (export_reference) has not run
    assert _read(ctx, T.STATE_FILE)["mlflow_run_id"] == run.info.run_id


def test_params_are_the_config_protocol_seed_and_data_window(tracked):
    ctx, _, (run,) = tracked
    p = run.data.params
    assert p["train.seed"] == str(ctx.train.seed) and p["train.epochs"] == "2" and p["protocol"] == "fixed"
    assert p["train.user_encoder"] == ctx.train.user_encoder and p["train.lr"] == str(ctx.train.lr)
    window, sizes = _read(ctx, "training_set.json")["window"], _read(ctx, "training_set.json")["split_sizes"]
    assert {k: p[f"window.{k}"] for k in window} == window
    assert {k: int(p[f"rows.{k}"]) for k in sizes} == sizes
    assert int(p["data.interactions"]) == _read(ctx, "validate.json")["interactions"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert run.data.tags["mlflow.source.git.commit"] == (head.stdout.strip() if head.returncode == 0 else "unknown")


def test_per_epoch_history_has_one_point_per_epoch(tracked):
    ctx, client, (run,) = tracked
    history = _read(ctx, "train.json")["history"]
    assert len(history) == 2  # 2 epochs, patience 4: both ran
    for key, mlflow_key in (("loss", "epoch/loss"), ("valid_ndcg@10", "epoch/valid_ndcg_at_10")):
        points = sorted(client.get_metric_history(run.info.run_id, mlflow_key), key=lambda m: m.step)
        assert [m.step for m in points] == [h["epoch"] for h in history]
        assert [m.value for m in points] == pytest.approx([h[key] for h in history])


def test_results_and_plots_are_artifacts_and_metrics(tracked, tmp_path):
    ctx, client, (run,) = tracked
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "metrics_valid.json", "comparison.json", "results.md", "results.png",
            "training_curve.png", "training_set.json", "gate.json", "register.json"} <= names
    assert T.STATE_FILE not in names
    got = Path(client.download_artifacts(run.info.run_id, "comparison.json", str(tmp_path)))
    assert json.loads(got.read_text()) == _read(ctx, "comparison.json")
    test = _read(ctx, "metrics.json")
    assert run.data.metrics["test/two_tower/ndcg_at_10"] == pytest.approx(test["two_tower"]["ndcg@10"])
    assert run.data.metrics["test/learned_only/cold/recall_at_100"] == pytest.approx(
        test["learned_only"]["cold"]["recall@100"])
    assert run.data.metrics["train/best_epoch"] == _read(ctx, "train.json")["best_epoch"]
    assert {f"step_seconds/{s}" for s in ("validate_data", "train", "evaluate", "register")} <= set(run.data.metrics)


def test_the_registry_entry_and_the_mlflow_run_name_each_other(tracked):
    ctx, _, (run,) = tracked
    tag = _read(ctx, "register.json")["tag"]
    ref = R.get_model(ctx.model_store, tag)
    assert ref.labels[T.LABEL] == run.info.run_id  # registry -> MLflow
    assert run.data.tags[T.REGISTRY_TAG] == ref.tag and ref.version == run.info.run_name  # MLflow -> registry
    assert ref.labels["run_id"] == ctx.run_id


def test_a_broken_store_does_not_fail_training(tracked, tmp_path, caplog):
    """The store's folder is a file: MLflow cannot open it; the step trains, warns and counts."""
    base = tracked[0]
    (tmp_path / "not-a-folder").write_text("")
    ctx = _ctx(tmp_path, base.data_dir, "broken", f"sqlite:///{tmp_path}/not-a-folder/mlflow.db", epochs=1)
    shutil.copytree(base.run_dir, ctx.run_dir, ignore=shutil.ignore_patterns(T.STATE_FILE, "model", "train.json"))
    _forget_the_process()
    before = T.FAILURES["open"], T.FAILURES["skipped"]
    with caplog.at_level(logging.WARNING, logger=T.__name__):
        out = P.run(ctx, ["train"])["train"]
    assert out["epochs_run"] == 1 and (ctx.run_dir / "model" / "model.pt").exists()
    assert T.FAILURES["open"] == before[0] + 1
    assert "training goes on" in caplog.text
    assert _read(ctx, T.STATE_FILE)["failures"] == 1 and "mlflow_run_id" not in _read(ctx, T.STATE_FILE)
    assert T.registry_labels(ctx) == {}  # the registry entry then carries no MLflow label
    assert T.FAILURES["skipped"] == before[1] + 1  # the broken store is not tried again in this process


def test_a_failing_step_ends_its_run_failed(tmp_path, synthetic_lake):
    from mlflow import MlflowClient

    ctx = _ctx(tmp_path, synthetic_lake, "no-data-yet", _store_uri(tmp_path))
    with pytest.raises(P.PipelineError, match="run validate_data first"):
        P.run(ctx, ["train"])
    client = MlflowClient(tracking_uri=ctx.tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name(ctx.model_name).experiment_id])
    assert run.info.status == "FAILED" and run.data.tags["minirec.failed_step"] == "train"
    assert "validate_data" in run.data.tags["minirec.error"]


@pytest.mark.parametrize("uri", ["", "  "])
def test_tracking_off_writes_nothing(make_ctx, uri):
    ctx = make_ctx(tracking_uri=uri)
    T.step_done(ctx, "train", {"history": [{"epoch": 1, "loss": 1.0}]}, 1.0)
    T.step_failed(ctx, "train", RuntimeError("x"))
    assert T.registry_labels(ctx) == {} and not (ctx.run_dir / T.STATE_FILE).exists()


def test_uri_resolution_and_metric_names():
    assert T.resolve_uri("sqlite:///run/mlflow/mlflow.db") == f"sqlite:///{REPO_ROOT}/run/mlflow/mlflow.db"
    assert T.resolve_uri("sqlite:////abs/m.db") == "sqlite:////abs/m.db" and T.resolve_uri(" ") == ""
    assert T.artifact_root("sqlite:////abs/m.db") == Path("/abs/artifacts")
    assert T.artifact_root("http://127.0.0.1:5000") is None
    assert T.metric_name("valid_ndcg@10") == "valid_ndcg_at_10" and T.metric_name("a b/c(d)") == "a b/c_d_"
    assert T.flatten({"a": {"x@1": 1, "s": "text", "l": [1]}, "ok": True}) == {"a/x_at_1": 1.0, "ok": 1.0}


def test_make_mlflow_serves_the_configured_store_on_loopback():
    s = Settings(mlflow_tracking_uri="sqlite:///run/mlflow/mlflow.db", mlflow_host="127.0.0.1", mlflow_port=7000)
    argv = T.server_argv(s)
    assert Path(argv[0]).name == "mlflow" and argv[1] == "server"
    opts = {a: b for a, b in zip(argv[:-1], argv[1:], strict=True) if a.startswith("--") and not b.startswith("--")}
    assert opts["--backend-store-uri"] == f"sqlite:///{REPO_ROOT}/run/mlflow/mlflow.db"
    assert opts["--default-artifact-root"] == (REPO_ROOT / "run/mlflow/artifacts").as_uri()
    assert opts["--host"] == "127.0.0.1" and opts["--port"] == "7000" and opts["--workers"] == "1"
    assert T.SERVER_ENV["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"  # no job consumers left behind
    for uri, why in (("", "tracking is off"), ("http://mlflow.example:5000", "open its UI there")):
        with pytest.raises(T.TrackingError, match=why):
            T.server_argv(Settings(mlflow_tracking_uri=uri))
