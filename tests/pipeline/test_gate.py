"""The quality gate rejects a crippled model and names both numbers; nothing is promoted."""

from __future__ import annotations

import json

import pytest
import torch

from minirec import pipeline as P
from minirec.model.ensemble import build
from minirec.model.two_tower import TwoTowerConfig
from minirec.train.gate import GateError, decide
from minirec.train.registry import list_models


def test_decide_rules():
    valid = {"two_tower": {"ndcg@10": 0.30}, "most_popular": {"ndcg@10": 0.25}, "item_knn": {"ndcg@10": 0.28}}
    ok = decide(valid, production=None)
    assert ok.passed and ok.best_baseline == "item_knn"
    worse_than_prod = decide(valid, production=0.32, tolerance=0.005)
    assert not worse_than_prod.passed and "0.3000" in worse_than_prod.message and "0.3200" in worse_than_prod.message
    assert decide(valid, production=0.303, tolerance=0.005).passed  # within tolerance
    tie = decide({"two_tower": {"ndcg@10": 0.28}, "item_knn": {"ndcg@10": 0.28}})
    assert not tie.passed  # must strictly beat the best baseline
    # stage by stage: production is compared with the value the pipeline passes (its retrieval stage)
    assert decide(valid, production=0.32, versus_production=0.321).passed
    lower_stage = decide(valid, production=0.29, versus_production=0.25)
    assert not lower_stage.passed and "0.2500" in lower_stage.message  # the served 0.30 would have passed


@pytest.mark.slow
def test_gate_rejects_random_embeddings(make_ctx):
    ctx = make_ctx(train={"epochs": 1, "progress": False})
    P.validate_data(ctx)
    P.build_training_set(ctx)
    P.train(ctx)
    # cripple: replace the trained weights by a fresh random model and no popularity term, in the
    # served (refit) towers and the holdout towers the validation numbers come from
    assert (ctx.run_dir / P.HOLDOUT / "model.pt").exists()
    for d in (ctx.run_dir / "model", ctx.run_dir / P.HOLDOUT):
        cfg = TwoTowerConfig.from_dict(json.loads((d / "config.json").read_text()))
        cfg.pop_weight = 0.0
        torch.manual_seed(123)
        torch.save(build(cfg).state_dict(), d / "model.pt")  # the trained shape: an ensemble by default
        (d / "config.json").write_text(json.dumps(cfg.to_dict()))
    P.evaluate(ctx)
    valid = json.loads((ctx.run_dir / "metrics_valid.json").read_text())
    with pytest.raises(GateError) as err:
        P.gate(ctx)
    msg = str(err.value)
    best = max(v["ndcg@10"] for k, v in valid.items() if k not in ("two_tower", "protocol"))
    assert f"{valid['two_tower']['ndcg@10']:.4f}" in msg and f"{best:.4f}" in msg
    assert "nothing was promoted" in msg
    with pytest.raises(P.PipelineError, match="gate did not pass"):
        P.register(ctx)
    assert list_models(ctx.model_store, ctx.model_name) == []
