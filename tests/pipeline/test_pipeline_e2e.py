"""The whole pipeline on a small synthetic lake with a real Redis: every step, registry stages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minirec import pipeline as P
from minirec.features.store import USER_SERVICE, online_features
from minirec.model.two_tower import user_vector
from minirec.train.ann import search
from minirec.train.registry import get_stage, load_bundle, promote


@pytest.mark.slow
def test_pipeline_end_to_end(make_ctx, redis_server):
    ctx = make_ctx(redis=redis_server, run_id="r1")
    P.run(ctx)
    latest = ctx.latest_dir
    metrics = json.loads((latest / "metrics.json").read_text())
    assert {"two_tower", "most_popular", "recent_popular", "item_knn", "als_mf"} <= set(metrics)
    for m in metrics.values():
        assert {"ndcg@10", "recall@10", "hit@10", "mrr@10", "ndcg@100", "coverage@10"} <= set(m)
    assert (latest / "results.md").exists() and (latest / "results.png").exists()
    assert (latest / "reference" / "features.parquet").exists()
    ann = json.loads((latest / "ann.json").read_text())
    assert ann["recall"] >= 0.99

    bundle = load_bundle(ctx.model_store, ctx.model_name)
    assert bundle.tag == f"{ctx.model_name}:r1"
    assert bundle.metadata["feature_service"] == USER_SERVICE
    # serving path: online features from Redis -> user vector -> ANN search
    store = ctx.store(ctx.feature_repo)
    uid = int(json.loads((ctx.run_dir / "validate.json").read_text())["users"] and 1)
    feats = online_features(store, USER_SERVICE, "user_id", [uid]).iloc[0].to_dict()
    q = user_vector(bundle.model, feats, uid)
    assert q.shape == (bundle.item_vectors.shape[1],) and np.isfinite(q).all()
    rows, _ = search(bundle.index, q[None, :], 10)
    assert len(set(bundle.item_ids[rows[0]])) == 10

    # a second registration as candidate, then promote: the first becomes archived
    ctx2 = make_ctx(redis=redis_server, run_id="r2", auto_promote=False)
    ctx2.model_store, ctx2.feature_repo = ctx.model_store, ctx.feature_repo
    P.run(ctx2, ["validate_data", "build_training_set", "train", "evaluate", "gate", "build_index", "register"])
    assert get_stage(ctx.model_store, ctx.model_name, "candidate").tag.version == "r2"
    promote(ctx.model_store, f"{ctx.model_name}:r2")
    assert get_stage(ctx.model_store, ctx.model_name, "production").tag.version == "r2"
    assert get_stage(ctx.model_store, ctx.model_name, "archived").tag.version == "r1"
