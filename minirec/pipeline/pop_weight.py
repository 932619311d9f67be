"""How the train step chooses the popularity weight w (the query vector's last entry) on validation.

The served score is u·v + w·pop (minirec.model.two_tower). w is chosen once, after training, from the
validation curve of retrieval NDCG@10 over the grid POP_WEIGHTS. Rules (TrainConfig.pop_weight_rule):

- "smooth": the argmax of the curve averaged with each point's neighbours (the middle of a broad peak).
- "bagged": the same argmax on B bootstrap resamples of the validation users, averaged and rounded to
  the grid. The argmax of a flat, noisy curve is a jumpy estimator; averaging it over resamples
  smooths it (bagging a model-selection rule: Breiman 1996, "Bagging predictors"; Efron 2014,
  "Estimation and accuracy after model selection", JASA 109:991). minirec/pipeline/README.md section 8
  has the measurement behind it. Caveat: with two separate, equally high peaks the average of the
  picks lands between them, possibly in a dip (tests/pipeline/test_pop_weight.py builds that case);
  the validation curves here are broad near the top, with a lower second bump at large w.

TrainConfig.pop_weight (a grid value) overrides both.
"""

from __future__ import annotations

import numpy as np

from minirec.pipeline.context import PipelineError

POP_WEIGHTS = tuple(k / 4 for k in range(25))  # grid for w (0, 0.25, ..., 6), chosen on validation
RULES = ("smooth", "bagged")
BOOTSTRAPS = 200  # resamples for "bagged": the choice moved by at most one grid step between RNG seeds
BAG_SEED = 0  # the resampling is part of the rule, so one fixed seed: the same curve gives the same w


def smooth(curve: np.ndarray) -> np.ndarray:
    """(W,) -> (W,) mean of each point and its neighbours (two points at the ends)."""
    padded = np.concatenate([[np.nan], curve, [np.nan]])
    return np.nanmean(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)


def bagged_index(per_user: np.ndarray, n_boot: int = BOOTSTRAPS, seed: int = BAG_SEED) -> int:
    """(U, W) per-user NDCG@10 per grid w -> the grid index of the bagged smoothed argmax."""
    rng = np.random.default_rng(seed)
    n = per_user.shape[0]
    picks = [int(np.argmax(smooth(per_user[rng.integers(0, n, n)].mean(axis=0)))) for _ in range(n_boot)]
    return int(round(float(np.mean(picks))))


def choose(per_user: np.ndarray, rule: str, fixed: float | None = None) -> tuple[int, dict[str, float]]:
    """(U, W) validation per-user NDCG@10 -> (chosen grid index, {rule: w it would choose})."""
    if rule not in RULES:
        raise PipelineError(f"TrainConfig.pop_weight_rule = {rule!r}: expected one of {RULES}")
    if fixed is not None and fixed not in POP_WEIGHTS:
        raise PipelineError(f"TrainConfig.pop_weight = {fixed} is not on the grid {POP_WEIGHTS}")
    idx = {"smooth": int(np.argmax(smooth(per_user.mean(axis=0)))), "bagged": bagged_index(per_user)}
    chosen = POP_WEIGHTS.index(fixed) if fixed is not None else idx[rule]
    return chosen, {r: POP_WEIGHTS[i] for r, i in idx.items()}


def validation_curve(model, users, items, ev, cat) -> np.ndarray:
    """(U, W) per-user validation NDCG@10 of the retrieval score at each grid w."""
    from minirec.model.two_tower import item_vectors, user_vectors
    from minirec.train.evaluate import evaluate_scores

    rows = users.set_index("user_id").loc[ev.user_ids].reset_index()
    q = user_vectors(model, rows, ev.user_ids)
    iv = item_vectors(model, items, cat.item_ids)
    out = np.empty((len(ev.user_ids), len(POP_WEIGHTS)))
    for k, w in enumerate(POP_WEIGHTS):
        q[:, -1] = w
        out[:, k] = evaluate_scores(q @ iv.T, ev, cat.n_items, ks=(10,))[1]["ndcg@10"]
    return out
