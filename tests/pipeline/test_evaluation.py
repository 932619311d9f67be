"""The evaluate step's reports: each bootstrap on its own split, warm/cold sub-entries, the model views."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from minirec import pipeline as P
from minirec.pipeline.context import BASELINES, MODEL_KEY
from tests.pipeline.conftest import offline_ctx


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, synthetic_lake):
    ctx = offline_ctx(tmp_path_factory.mktemp("evaluated"), synthetic_lake, "ev", "tev")
    P.run(ctx, ["validate_data", "build_training_set", "train", "train_ranker", "evaluate"])
    return ctx


def _read(ctx, name):
    return json.loads((ctx.run_dir / name).read_text())


def test_each_bootstrap_is_over_its_own_split(evaluated):
    comparison = _read(evaluated, "comparison.json")
    test, valid = _read(evaluated, "metrics.json"), _read(evaluated, "metrics_valid.json")
    for part, metrics, users in (("test", test, comparison["test_users"]), ("valid", valid, comparison["valid_users"])):
        b = comparison[f"bootstrap_vs_best_{part}"]
        best = comparison[f"best_baseline_{part}"]
        assert b["split"] == part and b["users"] == users == metrics[MODEL_KEY]["users"]
        # every evaluated user has a relevant item, so the mean paired difference is the difference of means
        assert b["mean"] == pytest.approx(metrics[MODEL_KEY]["ndcg@10"] - metrics[best]["ndcg@10"], abs=1e-9)
        assert best == max(BASELINES, key=lambda k: metrics[k]["ndcg@10"])
    assert comparison["valid_users"] != comparison["test_users"]
    assert comparison["bootstrap_vs_best_valid"] != comparison["bootstrap_vs_best_test"]
    per_user = pd.read_parquet(evaluated.run_dir / "per_user_ndcg10_valid.parquet")
    assert len(per_user) == comparison["valid_users"]


def test_every_entry_has_warm_and_cold_with_the_same_keys(evaluated):
    for name in ("metrics.json", "metrics_valid.json"):
        metrics = _read(evaluated, name)
        assert metrics.pop("protocol") == "fixed"  # the default: base data, fixed split
        assert set(metrics) == {MODEL_KEY, "retrieval_only", "learned_only", *BASELINES}
        for model, m in metrics.items():
            top = {k for k in m if k not in ("warm", "cold")}
            assert set(m["warm"]) == top and set(m["cold"]) == top, model
            assert m["warm"]["users"] > 0 and m["cold"]["users"] > 0, (name, model)  # both groups exist here
            assert m["warm"]["users"] + m["cold"]["users"] == m["users"]
            for k in ("ndcg@10", "recall@100", "mrr@10"):  # the all-user mean is the users-weighted mix
                mix = (m["warm"][k] * m["warm"]["users"] + m["cold"][k] * m["cold"]["users"]) / m["users"]
                assert m[k] == pytest.approx(mix), (model, k)
        for group in ("warm", "cold"):  # the ranker reorders the top 100 only: Recall@100 is retrieval's
            assert metrics["retrieval_only"][group]["recall@100"] == metrics[MODEL_KEY][group]["recall@100"]
        assert metrics["retrieval_only"]["recall@100"] == metrics[MODEL_KEY]["recall@100"]
    results = (evaluated.run_dir / "results.md").read_text()
    assert "by user group" in results and "| learned_only |" in results
    assert results.startswith("Protocol: **fixed**")
    assert _read(evaluated, "comparison.json")["protocol"] == "fixed"


def test_learned_only_is_the_score_without_the_popularity_term(evaluated):
    from minirec.pipeline import context as C
    from minirec.train.evaluate import evaluate_scores
    from minirec.train.registry import load_dir

    ctx = evaluated
    tables = C.load_run_tables(ctx)
    split, cat = C.split_of(ctx, tables), C.catalogue(tables)
    _, test_ev = C.eval_sets(split, cat)
    users, items = C.frames(ctx, "users_test", "items_test")
    model, _ = load_dir(ctx.run_dir / "model")
    model.cfg.pop_weight = 5.0  # a large popularity weight makes the two views differ
    q = C.tower_scores(model, users, items, test_ev.user_ids, cat.item_ids)
    q0 = C.tower_scores(model, users, items, test_ev.user_ids, cat.item_ids, pop_weight=0.0)
    assert not np.allclose(q, q0)
    learned = _read(ctx, "metrics.json")["learned_only"]
    assert evaluate_scores(q0, test_ev, cat.n_items)[0]["ndcg@10"] == pytest.approx(learned["ndcg@10"])


def test_gate_ignores_the_candidates_own_views(evaluated, tmp_path):
    """learned_only scoring above two_tower must not make the gate treat it as a baseline to beat."""
    import shutil
    from dataclasses import replace

    ctx = replace(evaluated, run_id="ev-gate", artifacts_dir=tmp_path / "artifacts", model_store=tmp_path / "store")
    shutil.copytree(evaluated.run_dir, ctx.run_dir)
    valid = _read(ctx, "metrics_valid.json")
    top = max(valid[k]["ndcg@10"] for k in BASELINES)
    valid[MODEL_KEY]["ndcg@10"] = valid["retrieval_only"]["ndcg@10"] = top + 0.01
    valid["learned_only"]["ndcg@10"] = top + 0.5
    P.write_json(ctx.run_dir / "metrics_valid.json", valid)
    out = P.gate(ctx)
    assert out["passed"] and out["best_baseline"] in BASELINES and out["ranker"] == "passed"


def test_gate_refuses_a_ranker_that_lowers_the_retrieval_stage(evaluated, tmp_path):
    """The served entry (retrieval + the ranker's out-of-fold scores) below retrieval alone by more than
    the tolerance fails the gate, even when it beats every baseline."""
    import shutil
    from dataclasses import replace

    from minirec.train.gate import GateError

    ctx = replace(evaluated, run_id="ev-ranker", artifacts_dir=tmp_path / "artifacts", model_store=tmp_path / "store")
    shutil.copytree(evaluated.run_dir, ctx.run_dir)
    valid = _read(ctx, "metrics_valid.json")
    top = max(valid[k]["ndcg@10"] for k in BASELINES)
    valid[MODEL_KEY]["ndcg@10"] = top + 0.01
    valid["retrieval_only"]["ndcg@10"] = top + 0.01 + 2 * ctx.gate_tolerance
    P.write_json(ctx.run_dir / "metrics_valid.json", valid)
    with pytest.raises(GateError, match="ranker lowers"):
        P.gate(ctx)
    assert _read(ctx, "gate.json")["ranker"].startswith("quality gate failed")
