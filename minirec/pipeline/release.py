"""Steps 7-10: the release, in the order that keeps production serving until the end.

    register (candidate) -> materialize -> backfill_seen -> promote

The candidate is registered first (the treatment arm can serve it), the
online features and seen-sets it needs are written next, and only then is it
promoted. A failure at any step stops the run with the previous production
model still serving. Promotion is refused when production changed since the
gate decided (another run promoted in between), and it is recorded in the
registry's stage log with who and why.

The online store and seen-sets are released as of the serving snapshot's
cut (see index.RELEASE_FRAMES): the start of the held-out period.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

import pandas as pd

from minirec.pipeline.context import (
    MODEL_KEY,
    PipelineError,
    RunContext,
    git_commit,
    load_run_tables,
    read_json,
    write_json,
)


def release_cut(ctx: RunContext) -> pd.Timestamp:
    """First timestamp of the held-out period: the online state holds everything before it."""
    return pd.Timestamp(read_json(ctx.run_dir / "training_set.json")["window"]["cut_test"])


def register(ctx: RunContext) -> dict[str, Any]:
    """Save the bundle in the BentoML model store as the `candidate` (older candidates are archived)."""
    from minirec.features.store import USER_SERVICE
    from minirec.pipeline.tracking import registry_labels
    from minirec.train.registry import register as reg

    gate_info = read_json(ctx.run_dir / "gate.json")
    if not gate_info.get("passed"):
        raise PipelineError("the gate did not pass for this run; refusing to register")
    valid = read_json(ctx.run_dir / "metrics_valid.json")
    meta = {
        "run_id": ctx.run_id, "metrics_test": read_json(ctx.run_dir / "metrics.json"),
        "metrics_valid": valid, "valid_ndcg@10": valid[MODEL_KEY]["ndcg@10"],
        "data_window": read_json(ctx.run_dir / "training_set.json")["window"],
        "feature_service": USER_SERVICE, "git_commit": git_commit(), "gate": gate_info,
        "ann": read_json(ctx.run_dir / "ann.json"), "train_seconds": read_json(ctx.run_dir / "train.json")["seconds"],
    }
    tag = reg(ctx.run_dir / "bundle", store_path=ctx.model_store, name=ctx.model_name, version=ctx.run_id,
              metadata=meta, by=ctx.promoted_by, reason=f"run {ctx.run_id}: {gate_info.get('message', '')}",
              labels=registry_labels(ctx))  # mlflow_run_id: the run's MLflow run (tracking.py)
    out = {"tag": tag, "stage": "candidate", "store": str(ctx.model_store)}
    write_json(ctx.run_dir / "register.json", out)
    return out


def materialize(ctx: RunContext) -> dict[str, Any]:
    """Publish the run's feature tables to the live Feast repo, apply, materialise into Redis up to the cut."""
    import redis

    from minirec.features.store import FeatureStoreError, apply_repo, check_sources
    from minirec.features.store import materialize as mat

    rows = check_sources(ctx.run_repo)  # fails before anything live changes
    try:
        redis.Redis(host=ctx.redis_host, port=ctx.redis_port, socket_timeout=5).ping()
    except Exception as exc:
        raise FeatureStoreError(f"Redis did not answer on {ctx.redis_host}:{ctx.redis_port} ({exc}); "
                                "run `make up` or set REDIS_HOST/REDIS_PORT; the online store is unchanged") from exc
    live = ctx.feature_repo / "data"
    live.mkdir(parents=True, exist_ok=True)
    for src in sorted((ctx.run_repo / "data").glob("*.parquet")):
        tmp = live / f".{src.name}.tmp"
        shutil.copy2(src, tmp)
        tmp.replace(live / src.name)
    store = ctx.store(ctx.feature_repo)
    apply_repo(store, ctx.feature_repo)
    end = release_cut(ctx) - pd.Timedelta(seconds=1)  # Feast's end is inclusive; the cut's own events are held out
    t0 = time.perf_counter()
    mat(store, end=end.to_pydatetime())
    out = {"rows": rows, "end": end.isoformat(), "seconds": round(time.perf_counter() - t0, 1),
           "redis": f"{ctx.redis_host}:{ctx.redis_port}", "project": ctx.feast_project}
    write_json(ctx.run_dir / "materialize.json", out)
    return out


def backfill_seen(ctx: RunContext) -> dict[str, Any]:
    """Every user's items rated before the cut into their Redis seen-set (SADD only)."""
    import redis

    from minirec.features.seen import backfill_seen as backfill

    inter = load_run_tables(ctx)["interactions"]
    before = inter[inter["event_timestamp"] < release_cut(ctx)][["user_id", "item_id"]]
    client = redis.Redis(host=ctx.redis_host, port=ctx.redis_port, socket_timeout=10)
    try:
        t0 = time.perf_counter()
        users = backfill(client, ctx.feast_project, before)
    except redis.RedisError as exc:
        raise PipelineError(f"seen-set backfill failed on {ctx.redis_host}:{ctx.redis_port} ({exc}); "
                            "production is unchanged; rerun the step when Redis answers") from exc
    finally:
        client.close()
    out = {"users": users, "interactions": int(len(before)), "cut": release_cut(ctx).isoformat(),
           "seconds": round(time.perf_counter() - t0, 2)}
    write_json(ctx.run_dir / "backfill_seen.json", out)
    return out


def promote(ctx: RunContext) -> dict[str, Any]:
    """Promote the candidate when the gate passed and auto_promote is on; refuse if production moved."""
    from minirec.train.registry import promote as prom

    gate_info = read_json(ctx.run_dir / "gate.json")
    tag = read_json(ctx.run_dir / "register.json")["tag"]
    for step in ("materialize", "backfill_seen"):
        read_json(ctx.run_dir / f"{step}.json")  # the features it needs are released first
    if not gate_info.get("passed"):
        raise PipelineError("the gate did not pass for this run; refusing to promote")
    if not ctx.auto_promote:
        out = {"tag": tag, "promoted": False, "reason": "auto_promote off (--no-promote): left as candidate"}
    else:
        prom(ctx.model_store, tag, by=ctx.promoted_by, reason=f"gate passed: {gate_info['message']}",
             expect_production=gate_info.get("production_tag"))
        out = {"tag": tag, "promoted": True, "replaced": gate_info.get("production_tag"),
               "reason": gate_info["message"]}
    write_json(ctx.run_dir / "promote.json", out)
    return out


__all__ = ["backfill_seen", "materialize", "promote", "register", "release_cut"]
