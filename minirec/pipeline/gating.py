"""Step 5: the quality gate, comparing like with like.

The candidate's validation NDCG@10 (from evaluate) must beat the best tuned
baseline and must not fall below production's by more than the tolerance.
Production is not taken at its word: its registered model is re-scored here,
on this run's validation users, targets and feature frames, with the same
scoring function the candidate was measured with. A metric stored by an
older run came from another window and cannot be compared.

Stage by stage: production's ranker was trained on a validation period like
this one (the same one under the fixed protocol), so re-scoring it there would
be in-sample. Production's retrieval stage, re-scored, is compared with the
candidate's retrieval stage (`retrieval_only`); the candidate's ranking stage
has its own rule (ranker_gate, on out-of-fold scores). The baselines face the
model as served (`two_tower`).
"""

from __future__ import annotations

from typing import Any

from minirec.pipeline.context import (
    BASELINES,
    MODEL_KEY,
    RunContext,
    catalogue,
    eval_sets,
    frames,
    load_run_tables,
    read_json,
    split_of,
    tower_scores,
    write_json,
)


def rescore(ctx: RunContext, model_dir) -> float:
    """Validation NDCG@10 of the model in `model_dir` on this run's validation set: its holdout towers
    (`holdout/`, trained before its validation period) when it has them, as the candidate's
    `retrieval_only` entry is; the served towers were refit on that period (training.py)."""
    from minirec.train.evaluate import evaluate_scores
    from minirec.train.registry import load_dir

    holdout = model_dir / "holdout"  # a refit bundle trained on its validation period: re-score what did not
    model, _ = load_dir(holdout if (holdout / "model.pt").exists() else model_dir)
    tables = load_run_tables(ctx)
    split, cat = split_of(ctx, tables), catalogue(tables)
    valid_ev, _ = eval_sets(split, cat)
    users_valid, items_valid = frames(ctx, "users_valid", "items_valid")
    scores = tower_scores(model, users_valid, items_valid, valid_ev.user_ids, cat.item_ids)  # (U_v, M)
    return float(evaluate_scores(scores, valid_ev, cat.n_items, ks=(10,))[0]["ndcg@10"])


def gate(ctx: RunContext) -> dict[str, Any]:
    """Fail (GateError) unless the candidate beats the best baseline and is not worse than production.

    gate.json records the production tag the decision saw; the promote step
    refuses when production changed in between."""
    from minirec.train.gate import GateError, decide
    from minirec.train.registry import get_stage

    valid = read_json(ctx.run_dir / "metrics_valid.json")
    prod = get_stage(ctx.model_store, ctx.model_name, "production")
    prod_value = None
    if prod is not None:
        try:
            prod_value = rescore(ctx, prod.path)
        except Exception as exc:  # another feature schema, a damaged entry: no like-for-like comparison
            raise GateError(f"cannot re-score production {prod.tag} on this run's validation set "
                            f"({type(exc).__name__}: {exc}); nothing was promoted; compare by hand and "
                            "promote with `make promote TAG=...` if the candidate is wanted") from exc
    # the candidate against the baselines only: its own parts (learned_only, ...) are not competitors
    contenders = {k: v for k, v in valid.items() if k == MODEL_KEY or k in BASELINES}
    like = valid.get("retrieval_only", valid[MODEL_KEY])["ndcg@10"]  # the stage production is re-scored as
    decision = decide(contenders, MODEL_KEY, prod_value, ctx.gate_tolerance, versus_production=like)
    ranker_problem = ranker_gate(valid, ctx.gate_tolerance)
    out = {**decision.to_dict(), "production_tag": prod.tag if prod else None,
           "production_stored_valid_ndcg@10": prod.metadata.get("valid_ndcg@10") if prod else None,
           "ranker": ranker_problem or "passed"}
    write_json(ctx.run_dir / "gate.json", out)
    if not decision.passed:
        raise GateError(decision.message)
    if ranker_problem:
        raise GateError(ranker_problem)
    return out


def ranker_gate(valid: dict[str, Any], tolerance: float) -> str | None:
    """Why the ranking stage must not ship, or None: its out-of-fold validation NDCG@10 (the served
    `two_tower` entry) may not fall below the retrieval stage's alone by more than the tolerance."""
    if "retrieval_only" not in valid:
        return None
    served, retrieval = valid[MODEL_KEY]["ndcg@10"], valid["retrieval_only"]["ndcg@10"]
    if served < retrieval - tolerance:
        return (f"quality gate failed: the ranker lowers validation ndcg@10 from {retrieval:.4f} (retrieval "
                f"alone) to {served:.4f}, more than the tolerance {tolerance}; nothing was promoted")
    return None
