"""Step 11: reference distributions for the drift monitor; publish the run to artifacts/latest."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from minirec.pipeline.context import (
    RunContext,
    catalogue,
    frames,
    git_commit,
    load_run_tables,
    read_json,
    write_json,
)
from minirec.pipeline.index import RELEASE_FRAMES
from minirec.pipeline.steps import STEPS

LATEST_FILES = ("metrics.json", "metrics_valid.json", "comparison.json", "results.md", "results.png", "training_set.json",
                "training_curve.png", "ann.json", "train.json", "gate.json", "register.json", "promote.json",
                "manifest.json")


def export_reference(ctx: RunContext) -> dict[str, Any]:
    """Reference distributions for the drift monitor, then publish to artifacts/latest."""
    from minirec.model.two_tower import COUNT_FEATURES, item_vectors, user_vectors
    from minirec.train.registry import load_dir

    model, _ = load_dir(ctx.run_dir / "model")
    labels, users_at, items_at = frames(ctx, "train_labels", *RELEASE_FRAMES)
    ref = ctx.run_dir / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    sample = labels.sample(n=min(20_000, len(labels)), random_state=0)
    feats = sample[["user_id", "item_id", "label_timestamp", "age_bucket", "gender", "occupation",
                    *COUNT_FEATURES, "u_mean_rating_30d"]].copy()
    feats["n_last_items"] = sample["last_items"].map(lambda v: 0 if v is None else len(v)).values
    feats.to_parquet(ref / "features.parquet", index=False)
    tables = load_run_tables(ctx)
    cat = catalogue(tables)
    q = user_vectors(model, users_at, users_at["user_id"].values)
    s = q @ item_vectors(model, items_at, cat.item_ids).T  # (U, M)
    top = np.sort(s, axis=1)[:, ::-1][:, :10]
    pd.DataFrame({"user_id": users_at["user_id"].values, "top1_score": top[:, 0],
                  "top10_mean_score": top.mean(axis=1)}).to_parquet(ref / "scores.parquet", index=False)
    manifest = {"run_id": ctx.run_id, "git_commit": git_commit(), "steps": list(STEPS),
                "window": read_json(ctx.run_dir / "training_set.json")["window"],
                **{step: read_json(ctx.run_dir / f"{step}.json") for step in ("register", "promote")
                   if (ctx.run_dir / f"{step}.json").exists()}}
    write_json(ctx.run_dir / "manifest.json", manifest)
    publish_latest(ctx)
    return {"reference": str(ref), "features_rows": int(len(feats)), "score_rows": int(len(top))}


def publish_latest(ctx: RunContext) -> Path:
    """Copy the run's results to artifacts/latest (replaced as a whole)."""
    tmp = ctx.artifacts_dir / ".latest.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name in LATEST_FILES:
        if (ctx.run_dir / name).exists():
            shutil.copy2(ctx.run_dir / name, tmp / name)
    if (ctx.run_dir / "reference").exists():
        shutil.copytree(ctx.run_dir / "reference", tmp / "reference")
    (tmp / "RUN_ID").write_text(ctx.run_id + "\n")
    if ctx.latest_dir.exists():
        shutil.rmtree(ctx.latest_dir)
    tmp.rename(ctx.latest_dir)
    return ctx.latest_dir
