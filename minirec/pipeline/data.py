"""Steps 1-2: check the lake, cut the window, assemble the protocol's log (protocol.py);
build the point-in-time training set through Feast."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from minirec.pipeline.context import (
    PipelineError,
    RunContext,
    catalogue,
    load_run_tables,
    split_of,
    write_json,
)
from minirec.pipeline.protocol import for_run


def validate_data(ctx: RunContext) -> dict[str, Any]:
    """Check the lake tables and cut the data window; writes run_dir/interactions.parquet."""
    from minirec.data.movielens import DataError, load

    try:
        tables = load(ctx.data_dir)
    except DataError:
        raise
    except Exception as exc:  # unreadable parquet
        raise DataError(f"the lake under {ctx.data_dir} is unreadable ({type(exc).__name__}: {exc}); "
                        "re-fetch it with `make data`") from exc
    inter, items = tables["interactions"], tables["items"]
    need = {"interactions": ["user_id", "item_id", "rating", "event_timestamp"],
            "items": ["item_id", "genres", "year"], "users": ["user_id", "age", "gender", "occupation"]}
    for name, cols in need.items():
        missing = [c for c in cols if c not in tables[name].columns]
        if missing:
            raise DataError(f"{name} table lacks columns {missing}; the lake is corrupt, run `make data`")
    problems = []
    if inter[["user_id", "item_id", "event_timestamp"]].isna().any().any():
        problems.append("null keys or timestamps in interactions")
    if len(inter) and not inter["rating"].between(1, 5).all():
        problems.append("ratings outside 1..5")
    unknown_items = set(inter["item_id"].unique()) - set(items["item_id"].unique())
    if unknown_items:
        problems.append(f"{len(unknown_items)} interacted item ids missing from the items table")
    if problems:
        raise DataError("corrupt lake: " + "; ".join(problems) + "; re-fetch with `make data`")
    window = inter
    if ctx.window_end is not None:
        window = inter[inter["event_timestamp"] < pd.Timestamp(ctx.window_end)]
    if len(window) == 0:
        raise DataError(f"the training window is empty: no interaction before {ctx.window_end} "
                        f"(the lake spans {inter['event_timestamp'].min()} .. {inter['event_timestamp'].max()})")
    window, assembly = for_run(ctx, window, tables)  # fixed: the base window itself; rolling: + the lake
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    window.to_parquet(ctx.run_dir / "interactions.parquet", index=False)
    out = {"run_id": ctx.run_id, "interactions": int(len(window)), "users": int(window["user_id"].nunique()),
           "items": int(window["item_id"].nunique()), "start": window["event_timestamp"].min(),
           "end": window["event_timestamp"].max(), "window_end": ctx.window_end, **assembly}
    write_json(ctx.run_dir / "validate.json", out)
    return out


# ---------------------------------------------------------------- 2. build_training_set
def build_training_set(ctx: RunContext) -> dict[str, Any]:
    """Feature tables -> private Feast repo -> point-in-time training and evaluation frames."""
    from minirec.features.store import apply_repo, copy_repo
    from minirec.features.tables import build_feature_tables, write_feature_tables
    from minirec.features.training_set import items_at, label_frame, users_at

    tables = load_run_tables(ctx)
    split = split_of(ctx, tables)
    cat = catalogue(tables)
    copy_repo(ctx.run_repo, ctx.feature_repo)
    rows = write_feature_tables(build_feature_tables(tables), ctx.run_repo / "data")
    store = ctx.store()
    apply_repo(store, ctx.run_repo)
    eng = ctx.offline_engine
    t0 = time.perf_counter()
    try:
        frames = {
            "train_labels": label_frame(store, split.train, engine=eng),
            "valid_labels": label_frame(store, split.valid, engine=eng),  # the served towers' refit (training.py)
            "users_valid": users_at(store, cat.user_ids, split.cut_valid, engine=eng),
            "users_test": users_at(store, cat.user_ids, split.cut_test, engine=eng),
            "items_valid": items_at(store, cat.item_ids, split.cut_valid, engine=eng),
            "items_test": items_at(store, cat.item_ids, split.cut_test, engine=eng),
            "users_end": users_at(store, cat.user_ids, split.end + pd.Timedelta(seconds=1), engine=eng),
            "items_end": items_at(store, cat.item_ids, split.end + pd.Timedelta(seconds=1), engine=eng),
        }
    finally:
        if eng == "spark":  # give the JVM's memory back before training
            from minirec.features.spark_join import stop

            stop()
    out_dir = ctx.run_dir / "frames"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        if len(frame) == 0:
            raise PipelineError(f"frame {name} has no rows: the feature store returned nothing")
        frame.to_parquet(out_dir / f"{name}.parquet", index=False)
    out = {"feature_rows": rows, "frames": {k: len(v) for k, v in frames.items()},
           "offline_engine": eng,
           "join_seconds": round(time.perf_counter() - t0, 2), "window": split.window(),
           "split_sizes": {"train": len(split.train), "valid": len(split.valid), "test": len(split.test)}}
    write_json(ctx.run_dir / "training_set.json", out)
    return out
