"""Model quality on the real MovieLens-100K split, from the session's shared run of the whole
training DAG (`airflow dags test`, default settings: every step, real Redis, BentoML registry;
tests/pipeline_run.py), then the serving path.

Slow (the shared run takes a couple of minutes on 2 cores); runs in CI. The data comes from the
shared `movielens` fixture (fetched if missing).
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from minirec.features.store import USER_SERVICE, online_features
from minirec.model.two_tower import user_vector
from minirec.train.ann import search
from minirec.train.registry import get_stage, load_bundle, promote, register
from tests.pipeline_run import RUN_ID


@pytest.mark.slow
def test_two_tower_beats_every_baseline_on_the_test_split(pipeline_run, tmp_path):
    assert pipeline_run.returncode == 0, pipeline_run.output
    ctx = pipeline_run.ctx
    metrics = json.loads((ctx.latest_dir / "metrics.json").read_text())
    comparison = json.loads((ctx.latest_dir / "comparison.json").read_text())
    baselines = {"most_popular", "recent_popular", "item_knn", "als_mf"}
    assert metrics.pop("protocol") == "fixed"  # the benchmark: base MovieLens only, fixed split
    assert baselines | {"two_tower", "retrieval_only", "learned_only"} == set(metrics)
    tt = metrics["two_tower"]
    for name in baselines:
        assert tt["ndcg@10"] > metrics[name]["ndcg@10"], (name, tt["ndcg@10"], metrics[name]["ndcg@10"])
        assert tt["recall@10"] > metrics[name]["recall@10"], (name, tt["recall@10"], metrics[name]["recall@10"])
    ci = comparison["bootstrap_vs_best_test"]
    assert ci["low"] > 0, ci  # paired bootstrap 95 % interval of the NDCG@10 gain is above zero
    # issue 16's target for the served model is 0.40. Over 30 seeds with today's defaults (3-member towers,
    # bagged w, ranker on cold users; minirec/pipeline/README.md section 8) it scored 0.3955-0.4076,
    # mean 0.4024, seed 0 0.4025: 0.40 is near the bottom of the seed spread, not a floor, and a CPU with
    # other float kernels can move seed 0 like a seed change does. What this test guards is the level:
    # above the old served model's 0.389-0.391.
    assert tt["ndcg@10"] >= 0.392, tt["ndcg@10"]
    # the towers alone (no popularity term) against recent popularity: all users on 28 of 30 seeds (seed 0:
    # 0.3711 against 0.3634; the lowest, seed 25, 0.3533), warm users on all 30; an allowance for float drift
    lo, rp = metrics["learned_only"], metrics["recent_popular"]
    assert lo["ndcg@10"] > rp["ndcg@10"] - 0.003, (lo["ndcg@10"], rp["ndcg@10"])
    assert lo["warm"]["ndcg@10"] > rp["warm"]["ndcg@10"], (lo["warm"], rp["warm"])
    # the served towers were refit on train + validation labels for the holdout's best epoch count;
    # the holdout (train period only) gave the validation numbers and ships in the bundle for the gate
    tr, ts = (json.loads((ctx.run_dir / f).read_text()) for f in ("train.json", "training_set.json"))
    sizes = ts["split_sizes"]
    assert tr["refit"]["labels"] == sizes["train"] + sizes["valid"] and tr["labels"] == sizes["train"]
    assert tr["refit"]["epochs"] == tr["best_epoch"]
    # w is the bagged validation argmax (pipeline README, section 8), and every rule's choice is recorded
    choice = tr["pop_weight_choice"]
    assert choice["rule"] == "bagged" and tr["pop_weight"] == choice["by_rule"]["bagged"], choice
    # the towers are 3 members (seeds 0, 1, 2 for run seed 0), each early-stopped and refit on its own
    assert tr["ensemble"]["seeds"] == [0, 1, 2] and len(tr["refit"]["epochs_per_member"]) == 3
    assert comparison["test_users"] == 166  # global 80/10/10 cut of ML-100K
    # the towers alone (w = 0) learn with training: the validation curve rises above its first epoch
    # by more than the epoch-to-epoch noise of the old served-score curve (0.007, pipeline README)
    curve = [h["valid_ndcg@10"] for h in json.loads((ctx.run_dir / "train.json").read_text())["history"]]
    assert max(curve) > curve[0] + 0.01, curve
    for name, m in metrics.items():
        assert m["warm"]["users"] + m["cold"]["users"] == m["users"] == 166, name
        assert m["novelty@10"] > 0 and m["warm"]["novelty@10"] > 0 and m["coverage@10"] > 0, name
    # the ranking stage reorders the retrieval stage's top 100: Recall@100 is the retrieval stage's
    assert tt["recall@100"] == metrics["retrieval_only"]["recall@100"]
    assert tt["ndcg@10"] != metrics["retrieval_only"]["ndcg@10"]  # ... and it did reorder
    rk = json.loads((ctx.run_dir / "ranker.json").read_text())
    assert rk["segments"], rk["oof_minus_retrieval_valid_ndcg@10_by_segment"]
    assert "warm" not in rk["segments"]  # warm users are not eligible (ranking.choose_segments says why)
    for seg in ("warm", "cold"):  # a segment the ranker does not reorder is served in retrieval order
        if seg not in rk["segments"]:
            assert tt[seg]["ndcg@10"] == metrics["retrieval_only"][seg]["ndcg@10"], seg
    # ranker training rows are point in time: every feature dated before the first label, and no
    # count they carry exceeds what the log held before the label time (a later frame, the test
    # cut's or the window end's, would). Feature rows are written at a burst's end, so a user whose
    # burst straddles the cut reads the row before it: a few counts lag (5 of 197 here), none leads.
    assert pd.Timestamp(rk["features_as_of"]) < pd.Timestamp(rk["label_start"])
    oof = np.load(ctx.run_dir / "ranker_oof_valid.npz")
    users = pd.read_parquet(ctx.run_dir / "frames" / "users_valid.parquet").set_index("user_id")
    inter = pd.read_parquet(ctx.run_dir / "interactions.parquet")
    before = inter[inter["event_timestamp"] < pd.Timestamp(rk["label_start"])].groupby("user_id").size()
    expect = before.reindex(oof["user_ids"]).fillna(0).astype(int).values
    got = users.loc[oof["user_ids"], "u_cnt_all"].fillna(0).astype(int).values
    assert (got <= expect).all(), oof["user_ids"][got > expect]
    assert (got == expect).mean() > 0.9 and expect.sum() > 0
    assert rk["queries"] == 197 and rk["positives"] > 0
    ann = json.loads((ctx.latest_dir / "ann.json").read_text())
    assert ann["recall"] >= 0.99, ann

    # serving path: production bundle + online features from Redis -> top-10 via the ANN index
    bundle = load_bundle(ctx.model_store, ctx.model_name)
    assert bundle.tag == f"{ctx.model_name}:{RUN_ID}" and bundle.metadata["feature_service"] == USER_SERVICE
    assert bundle.ranker is not None and len(bundle.ranker_items) == len(bundle.item_ids)  # one bundle
    assert bundle.model.cfg.extra.get("ensemble") == 3 and bundle.item_vectors.shape[1] == 3 * 64 + 1
    assert bundle.ranker.segments == tuple(rk["segments"])
    # the registered bundle carries the holdout towers the gate re-scores, beside the served ones
    prod = get_stage(ctx.model_store, ctx.model_name, "production").path
    assert (prod / "holdout" / "model.pt").read_bytes() != (prod / "model.pt").read_bytes()
    feats = online_features(ctx.store(ctx.feature_repo), USER_SERVICE, "user_id", [1]).iloc[0].to_dict()
    assert feats["last_items"] is not None and len(feats["last_items"]) == 20
    q = user_vector(bundle.model, feats, 1)
    rows, _ = search(bundle.index, q[None, :], 10)
    exact = np.argsort(-(bundle.item_vectors @ q), kind="stable")[:10]
    assert set(rows[0]) == set(exact)

    # stages: a second bundle registered as candidate, then promoted; the first is archived
    # (in a copy of the shared run's model store, which other tests read)
    ctx = dataclasses.replace(ctx, model_store=shutil.copytree(ctx.model_store, tmp_path / "bentoml"))
    tag2 = register(ctx.run_dir / "bundle", store_path=ctx.model_store, name=ctx.model_name, version="second",
                    metadata={"valid_ndcg@10": 0.0})
    assert get_stage(ctx.model_store, ctx.model_name, "candidate").version == "second"
    promote(ctx.model_store, tag2)
    assert get_stage(ctx.model_store, ctx.model_name, "production").version == "second"
    assert get_stage(ctx.model_store, ctx.model_name, "archived").version == RUN_ID
