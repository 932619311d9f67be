"""Step 4: the two-tower and tuned baselines on validation and test, with a paired bootstrap."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from minirec.pipeline.context import (
    BASELINES,
    MODEL_KEY,
    RunContext,
    catalogue,
    eval_sets,
    frames,
    holdout_dir,
    load_run_tables,
    split_of,
    tower_scores,
    write_json,
)
from minirec.pipeline.protocol import protocol_note, run_protocol
from minirec.pipeline.ranking import check_recall_kept, ranked_scores
from minirec.pipeline.reports import plot_results, results_markdown


def _baselines(split_hist: pd.DataFrame, cat, cut: pd.Timestamp, params: dict[str, Any]) -> dict[str, Any]:
    from minirec.train import baselines as B

    return {
        "most_popular": B.fit_most_popular(split_hist, cat),
        "recent_popular": B.fit_recent_popular(split_hist, cat, cut, days=params["recent_days"]),
        "item_knn": B.fit_item_knn(split_hist, cat, neighbours=params["knn_neighbours"]),
        "als_mf": B.fit_als_mf(split_hist, cat, alpha=params["als_alpha"]),
    }


def _tune_baselines(split, cat, valid_ev) -> tuple[dict[str, Any], dict[str, Any]]:
    """Baseline hyperparameters chosen on validation NDCG@10 (never on test).

    Returns (params, the fitted validation scorers of the chosen settings)."""
    from minirec.train import baselines as B
    from minirec.train.evaluate import evaluate_scores

    def best(grid, fit):
        fitted = {g: fit(g) for g in grid}
        scores = {g: evaluate_scores(f(valid_ev.user_ids), valid_ev, cat.n_items, ks=(10,))[0]["ndcg@10"]
                  for g, f in fitted.items()}
        g = max(grid, key=lambda x: scores[x])
        return g, fitted[g]

    days, recent = best((7, 14, 30), lambda d: B.fit_recent_popular(split.train, cat, split.cut_valid, d))
    neigh, knn = best((50, 200, cat.n_items), lambda k: B.fit_item_knn(split.train, cat, k))
    alpha, als = best((1.0, 10.0), lambda a: B.fit_als_mf(split.train, cat, alpha=a))
    params = {"recent_days": days, "knn_neighbours": int(neigh), "als_alpha": alpha}
    fitted = {"most_popular": B.fit_most_popular(split.train, cat), "recent_popular": recent,
              "item_knn": knn, "als_mf": als}
    return params, fitted


def evaluate(ctx: RunContext) -> dict[str, Any]:
    """Two-tower and baselines on validation and test; JSON, markdown table, plot, bootstrap CIs.

    Model keys: `two_tower` is the model as served, retrieval then the ranker over its top 100
    (on validation the ranker's out-of-fold scores, see ranking.py); `retrieval_only` the retrieval
    stage alone; `learned_only` the retrieval stage without
    the popularity term (w = 0). Every entry has `warm` and `cold` sub-entries; the files also carry
    `protocol` (fixed | rolling), the data and split that produced them."""
    from minirec.train.evaluate import evaluate_scores
    from minirec.train.metrics import novelty, paired_bootstrap, self_information
    from minirec.train.registry import load_dir

    tables = load_run_tables(ctx)
    split, cat = split_of(ctx, tables), catalogue(tables)
    valid_ev, test_ev = eval_sets(split, cat)
    users_valid, items_valid, users_test, items_test = frames(
        ctx, "users_valid", "items_valid", "users_test", "items_test")
    # validation numbers from the towers that never trained on the validation period, test numbers
    # from the served ones (refit on train + validation, training.py): each part out of sample
    models = {"valid": load_dir(holdout_dir(ctx))[0], "test": load_dir(ctx.run_dir / "model")[0]}
    params, valid_scorers = _tune_baselines(split, cat, valid_ev)
    results: dict[str, dict[str, dict[str, Any]]] = {"valid": {}, "test": {}}
    per_user: dict[str, dict[str, np.ndarray]] = {"valid": {}, "test": {}}  # part -> model -> (U_e,) NDCG@10
    setups = {
        "valid": (valid_ev, split.train, split.cut_valid, users_valid, items_valid),
        "test": (test_ev, pd.concat([split.train, split.valid]), split.cut_test, users_test, items_test),
    }
    for part, (ev, hist, cut, users, items) in setups.items():
        model = models[part]
        scorers = valid_scorers if part == "valid" else _baselines(hist, cat, cut, params)
        retrieval = tower_scores(model, users, items, ev.user_ids, cat.item_ids)  # (U_e, M)
        learned = tower_scores(model, users, items, ev.user_ids, cat.item_ids, pop_weight=0.0)
        scores = {MODEL_KEY: ranked_scores(ctx, part, model, cat, ev, retrieval), "retrieval_only": retrieval,
                  "learned_only": learned, **{name: scorer(ev.user_ids) for name, scorer in scorers.items()}}
        info = self_information(cat.item_index(hist["item_id"].values), cat.n_items)  # (M,) bits
        for name, s in scores.items():
            summary, pu, ranked = evaluate_scores(s, ev, cat.n_items)
            for key, rows in (("", None), ("warm", ev.warm), ("cold", ~ev.warm)):
                (summary[key] if key else summary)["novelty@10"] = novelty(ranked[:, :10], info, rows)
            results[part][name] = summary
            per_user[part][name] = pu["ndcg@10"]
        check_recall_kept(results[part], part)
    comparison = _comparison(results, per_user, paired_bootstrap)
    comparison.update({"baseline_params": params, "test_users": int(len(test_ev.user_ids)),
                       "valid_users": int(len(valid_ev.user_ids)), "window": split.window()})
    test = results["test"]
    protocol = run_protocol(ctx)  # which data and split produced these numbers (protocol.py)
    comparison["protocol"] = protocol
    write_json(ctx.run_dir / "metrics.json", {"protocol": protocol, **test})
    write_json(ctx.run_dir / "metrics_valid.json", {"protocol": protocol, **results["valid"]})
    write_json(ctx.run_dir / "comparison.json", comparison)
    pd.DataFrame(per_user["test"], index=test_ev.user_ids).rename_axis("user_id").to_parquet(
        ctx.run_dir / "per_user_ndcg10_test.parquet")
    pd.DataFrame(per_user["valid"], index=valid_ev.user_ids).rename_axis("user_id").to_parquet(
        ctx.run_dir / "per_user_ndcg10_valid.parquet")
    (ctx.run_dir / "results.md").write_text(protocol_note(ctx) + results_markdown(results, comparison))
    plot_results(test, ctx.run_dir / "results.png")
    return {"test": test, "valid": results["valid"], "comparison": comparison}


def _comparison(results, per_user, bootstrap) -> dict[str, Any]:
    """Paired bootstraps of NDCG@10 differences, each over the users of its own split:
    two_tower and learned_only against the best baseline of that split."""
    out: dict[str, Any] = {"metric": "ndcg@10"}
    for part in ("test", "valid"):
        best = max(BASELINES, key=lambda k: results[part][k]["ndcg@10"])
        pu = per_user[part]
        out[f"best_baseline_{part}"] = best
        out[f"bootstrap_vs_best_{part}"] = {"split": part, **bootstrap(pu[MODEL_KEY], pu[best])}
        out[f"bootstrap_learned_only_vs_best_{part}"] = {"split": part, **bootstrap(pu["learned_only"], pu[best])}
    return out
