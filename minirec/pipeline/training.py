"""Step 3: train the two-tower; early stopping and the popularity weight w chosen on validation.

The validation curve (and early stopping) measures the towers alone, w = 0 (`learned_only`): with
w chosen per epoch the popularity term dominates and the curve stays flat while the loss falls
(the diagnosis in minirec/pipeline/README.md). w is chosen once, after training."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from minirec.pipeline.context import (
    HOLDOUT,
    RunContext,
    catalogue,
    eval_sets,
    frames,
    load_run_tables,
    split_of,
    write_json,
)
from minirec.pipeline.pop_weight import POP_WEIGHTS, choose, validation_curve


@dataclass
class Refit:
    model: Any  # TwoTower (or Ensemble) trained on train + validation labels
    results: list  # TrainResult per member
    labels: int


def _save(model, out_dir) -> None:
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out_dir / "model.pt")
    write_json(out_dir / "config.json", model.cfg.to_dict())


def member_seeds(seed: int, n: int) -> list[int]:
    """The seeds of an n-member ensemble for run seed `seed`: disjoint across run seeds (0 -> 0, 1, 2;
    1 -> 3, 4, 5 for n = 3), and a single model keeps the run's own seed."""
    return [seed * n + k for k in range(n)]


def _refit(ctx: RunContext, train_labels, tables, cat, members: list[tuple[int, int]], w: float) -> Refit:
    """The served towers: fresh members (each with its holdout member's seed, same settings) trained on
    the train AND validation periods' labels for that member's early-stopped number of epochs,
    combined with the w chosen on validation. members: [(seed, epochs)] per member.

    Why: the validation period is the newest tenth of the window before the test period; a model
    that never trains on it serves a month-old view of tastes and popularity (measured in
    minirec/pipeline/README.md, section 6). Nothing about it is chosen on data it trained on: epochs
    and w come from the holdout model (`model_holdout`, train period only), which also produces
    every validation number (evaluate, the ranker's candidates, the gate's re-scoring). Single
    process even under DDP (the other ranks have returned by then)."""
    import pandas as pd
    import torch

    from minirec.model.ensemble import combine
    from minirec.model.two_tower import TwoTower, TwoTowerConfig, encode_items, encode_users
    from minirec.train.trainer import recency_weights, train_two_tower

    (valid_labels,) = frames(ctx, "valid_labels")
    labels = pd.concat([train_labels, valid_labels], ignore_index=True)
    (items_test,) = frames(ctx, "items_test")  # item attributes as of the test cut (before its first label)
    cfg = TwoTowerConfig(user_ids=sorted(int(u) for u in labels["user_id"].unique()),
                         item_ids=[int(i) for i in cat.item_ids],
                         occupations=sorted(str(o) for o in tables["users"]["occupation"].unique()),
                         user_encoder=ctx.train.user_encoder, pop_weight=w)
    targets = torch.as_tensor(cat.item_index(labels["item_id"].values), dtype=torch.long)
    freq = np.bincount(targets.numpy(), minlength=cat.n_items).astype(np.float64)
    users_x, items_x = encode_users(labels, cfg, labels["user_id"].values), encode_items(items_test, cfg, cat.item_ids)
    weights = recency_weights(labels["label_timestamp"].values, ctx.train.recency_half_life_days)
    models, results = [], []
    for seed, epochs in members:
        torch.manual_seed(seed)
        model = TwoTower(TwoTowerConfig.from_dict(cfg.to_dict()))
        results.append(train_two_tower(model, users_x, targets, items_x, freq, None,
                                       replace(ctx.train, epochs=epochs, seed=seed), weights=weights))
        models.append(model)
    return Refit(model=combine(models, w), results=results, labels=int(len(labels)))


def train(ctx: RunContext, fit=None) -> dict[str, Any]:
    """Train the two-tower on the train period (TrainConfig.ensemble members, each with its own seed and
    early stopping on validation; minirec.model.ensemble), w on validation for the ensemble as a whole.

    `fit` replaces train_two_tower (same signature): minirec.train.ddp passes its DDP loop."""
    import torch

    from minirec.model.ensemble import combine
    from minirec.model.two_tower import TwoTower, TwoTowerConfig, encode_items, encode_users
    from minirec.train.trainer import plot_history, recency_weights, train_two_tower

    tables = load_run_tables(ctx)
    split, cat = split_of(ctx, tables), catalogue(tables)
    labels, users_valid, items_valid = frames(ctx, "train_labels", "users_valid", "items_valid")
    valid_ev, _ = eval_sets(split, cat)
    cfg = TwoTowerConfig(user_ids=sorted(int(u) for u in labels["user_id"].unique()),
                         item_ids=[int(i) for i in cat.item_ids],
                         occupations=sorted(str(o) for o in tables["users"]["occupation"].unique()),
                         user_encoder=ctx.train.user_encoder)
    users_x = encode_users(labels, cfg, labels["user_id"].values)
    targets = torch.as_tensor(cat.item_index(labels["item_id"].values), dtype=torch.long)
    items_x = encode_items(items_valid, cfg, cat.item_ids)
    freq = np.bincount(targets.numpy(), minlength=cat.n_items).astype(np.float64)

    def validate(m: TwoTower) -> float:  # the towers alone: w = 0
        from minirec.pipeline.context import tower_scores
        from minirec.train.evaluate import evaluate_scores

        s = tower_scores(m, users_valid, items_valid, valid_ev.user_ids, cat.item_ids, pop_weight=0.0)
        return evaluate_scores(s, valid_ev, cat.n_items, ks=(10,))[0]["ndcg@10"]

    weights = recency_weights(labels["label_timestamp"].values, ctx.train.recency_half_life_days)
    seeds = member_seeds(ctx.train.seed, ctx.train.ensemble)
    members, results = [], []
    for seed in seeds:  # each member trains and early-stops on its own (the same data, its own seed)
        torch.manual_seed(seed)
        members.append(TwoTower(TwoTowerConfig.from_dict(cfg.to_dict())))
        results.append((fit or train_two_tower)(members[-1], users_x, targets, items_x, freq, validate,
                                                replace(ctx.train, seed=seed), weights=weights))
    model = combine(members, 0.0)  # w is chosen for the ensemble as a whole, below
    per_user = validation_curve(model, users_valid, items_valid, valid_ev, cat)  # (U_valid, W)
    k, rules = choose(per_user, ctx.train.pop_weight_rule, ctx.train.pop_weight)
    w, ndcg = POP_WEIGHTS[k], float(per_user[:, k].mean())
    model.cfg.pop_weight = w
    _save(model, ctx.run_dir / HOLDOUT)
    result = results[0]  # the curve, epochs and seconds reported below are the first member's
    plot_history(result.history, ctx.run_dir / "training_curve.png",
                 title=f"two-tower ({cfg.user_encoder} user encoder), validation w = 0"
                       + (f", member 1 of {len(seeds)}" if len(seeds) > 1 else ""))
    refit = (_refit(ctx, labels, tables, cat, [(sd, r.best_epoch) for sd, r in zip(seeds, results, strict=True)], w)
             if ctx.train.refit else None)
    _save(refit.model if refit else model, ctx.run_dir / "model")
    out = {"seconds": round(result.seconds, 1), "best_epoch": result.best_epoch, "epochs_run": len(result.history),
           "valid_ndcg@10": ndcg, "pop_weight": w,
           "pop_weight_choice": {"rule": "fixed" if ctx.train.pop_weight is not None else ctx.train.pop_weight_rule,
                                 "by_rule": rules, "grid": list(POP_WEIGHTS),
                                 "valid_ndcg@10": [round(float(x), 5) for x in per_user.mean(axis=0)]},
           "history": result.history, "train_config": result.config,
           "labels": int(len(labels)),
           "ensemble": {"seeds": seeds, "best_epochs": [r.best_epoch for r in results],
                        "valid_learned_ndcg@10": [r.best_valid for r in results],
                        "seconds": round(sum(r.seconds for r in results), 1)},
           "refit": {"epochs": result.best_epoch, "epochs_per_member": [r.best_epoch for r in results],
                     "labels": refit.labels, "seconds": round(sum(r.seconds for r in refit.results), 1)}
           if refit else None}
    write_json(ctx.run_dir / "train.json", out)
    return out
