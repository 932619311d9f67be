"""Why the towers do (not) learn what the temporal split rewards: measurements on one finished run.

    python -m minirec.pipeline.diagnose --run-id <id>   -> artifacts/runs/<id>/diagnosis.json (+ stdout)

Reads what the pipeline wrote (interactions, frames, model, per-user NDCG@10) and measures:
- noise: a bootstrap 95 % interval of validation and test NDCG@10 per model (users resampled),
  beside the epoch-to-epoch spread of the validation curve;
- population: warm/cold users and their share of each period's ratings; how the training labels
  (what the softmax averages over) are spread over users compared with the evaluated users
  (what NDCG@10 averages over);
- popularity: how the learned score (w = 0) and the training frequency each rank-correlate with the
  test period's item popularity (what logQ leaves in and what the split rewards);
- candidates: relevant items per user, relevant items never seen in training, catalogue ranked.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np
import pandas as pd


def bootstrap_mean(x: np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """95 % percentile interval of the mean of (U,) per-user values (NaN dropped)."""
    x = x[np.isfinite(x)]
    means = x[np.random.default_rng(seed).integers(0, len(x), (n_boot, len(x)))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return {"mean": float(x.mean()), "low": float(lo), "high": float(hi), "half_width": float((hi - lo) / 2),
            "users": int(len(x))}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(pd.Series(a).rank().corr(pd.Series(b).rank()))


def top_overlap(a: np.ndarray, b: np.ndarray, k: int = 100) -> float:
    """Share of b's top k items (by value) that are in a's top k."""
    top = lambda x: set(np.argsort(-x, kind="stable")[:k].tolist())  # noqa: E731
    return len(top(a) & top(b)) / k


def _population(split, valid_ev, test_ev) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part, ev, period in (("valid", valid_ev, split.valid), ("test", test_ev, split.test)):
        cold_ids = set(ev.user_ids[~ev.warm].tolist())
        out[part] = {"users": int(len(ev.user_ids)), "warm": int(ev.warm.sum()), "cold": int((~ev.warm).sum()),
                     "ratings": int(len(period)),
                     "cold_share_of_ratings": float(period["user_id"].isin(cold_ids).mean())}
    per_user = split.train.groupby("user_id").size().sort_values(ascending=False)
    top = per_user.iloc[: max(1, len(per_user) // 10)]
    warm_test = set(test_ev.user_ids[test_ev.warm].tolist())
    out["train_labels"] = {
        "labels": int(len(split.train)), "users": int(len(per_user)),
        "top10pct_users_share": float(top.sum() / per_user.sum()),
        "warm_test_users_share": float(per_user[per_user.index.isin(warm_test)].sum() / per_user.sum()),
    }
    return out


def _popularity(split, cat, model, users_test, items_test, test_ev) -> dict[str, Any]:
    from minirec.pipeline.context import tower_scores

    def counts(df: pd.DataFrame) -> np.ndarray:
        return np.bincount(cat.item_index(df["item_id"].values), minlength=cat.n_items).astype(float)

    hist = pd.concat([split.train, split.valid])
    recent = hist[hist["event_timestamp"] >= split.cut_test - pd.Timedelta(days=14)]
    test_pop, train_pop, recent_pop = counts(split.test), counts(split.train), counts(recent)
    learned = tower_scores(model, users_test, items_test, test_ev.user_ids, cat.item_ids, pop_weight=0.0)  # (U, M)
    mean_learned = learned.mean(axis=0)  # (M,) the score every test user shares: the model's popularity
    active = test_pop > 0
    return {
        "spearman_with_test_popularity": {
            "train_frequency": spearman(train_pop, test_pop),
            "recent_14d_frequency": spearman(recent_pop, test_pop),
            "learned_mean_score": spearman(mean_learned, test_pop),
        },
        "top100_overlap_with_test_top100": {
            "train_frequency": top_overlap(train_pop, test_pop),
            "recent_14d_frequency": top_overlap(recent_pop, test_pop),
            "learned_mean_score": top_overlap(mean_learned, test_pop),
        },
        "spearman_learned_mean_score_vs_train_frequency": spearman(mean_learned, train_pop),
        "items_rated_in_test": int(active.sum()),
        "share_of_learned_score_variance_shared_by_users": float(mean_learned.var() / learned.var()),
    }


def _candidates(split, cat, test_ev) -> dict[str, Any]:
    n_rel = np.array([len(r) for r in test_ev.relevant])
    trained = set(cat.item_index(split.train["item_id"].unique()).tolist())
    rel_all = [i for r in test_ev.relevant for i in r]
    return {"catalogue_ranked": int(cat.n_items), "relevant_per_user_mean": float(n_rel.mean()),
            "relevant_per_user_median": float(np.median(n_rel)),
            "relevant_never_in_training_share": float(np.mean([i not in trained for i in rel_all])),
            "seen_items_masked_per_warm_user_mean": float(test_ev.seen[test_ev.warm].sum(axis=1).mean())}


def diagnose(run_id: str) -> dict[str, Any]:
    from minirec.pipeline.context import (
        RunContext,
        catalogue,
        eval_sets,
        frames,
        load_run_tables,
        read_json,
        split_of,
    )
    from minirec.train.registry import load_dir

    ctx = RunContext.from_settings(run_id=run_id)
    tables = load_run_tables(ctx)
    split, cat = split_of(ctx, tables), catalogue(tables)
    valid_ev, test_ev = eval_sets(split, cat)
    users_test, items_test = frames(ctx, "users_test", "items_test")
    model, _ = load_dir(ctx.run_dir / "model")
    noise: dict[str, Any] = {}
    for part in ("valid", "test"):
        pu = pd.read_parquet(ctx.run_dir / f"per_user_ndcg10_{part}.parquet")
        noise[part] = {m: bootstrap_mean(pu[m].to_numpy()) for m in pu.columns}
    curve = [h["valid_ndcg@10"] for h in read_json(ctx.run_dir / "train.json")["history"]]
    noise["valid_curve"] = {"min": min(curve), "max": max(curve), "range": max(curve) - min(curve),
                            "epochs": len(curve)}
    out = {"run_id": run_id, "noise": noise, "population": _population(split, valid_ev, test_ev),
           "popularity": _popularity(split, cat, model, users_test, items_test, test_ev),
           "candidates": _candidates(split, cat, test_ev)}
    (ctx.run_dir / "diagnosis.json").write_text(json.dumps(out, indent=2))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m minirec.pipeline.diagnose", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-id", required=True, help="a run under artifacts/runs/ that finished `evaluate`")
    print(json.dumps(diagnose(p.parse_args(argv).run_id), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
