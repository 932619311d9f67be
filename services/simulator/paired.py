"""CTR by served model: two arms of the recommender on the SAME sessions, clicked by the same model.

    plan (held-out sessions) --per session--> POST /recommend variant=control   -> click model -> clicks_a
                                          \\-> POST /recommend variant=treatment -> click model -> clicks_b
                                               (same generator seed for both: common random numbers)

The recommender serves `control` from the production model and `treatment` from the newest candidate
(services/recommender/engine.py), so registering e.g. a popularity bundle as the candidate compares
it with production (loadtests/ctr_by_model.py does exactly that on a private model store).

Both lists of a session are clicked with generators seeded alike, so position p gets the same uniform
draw in both arms: an item at the same position with the same attractiveness is clicked in both or in
neither, and the difference measures the lists, not the dice (a paired design; the variance of the
difference is far below that of two independent runs). Nothing is sent to Kafka: a user shown two
lists is not a real session, and its clicks must not reach the lake.

Beside the sampled clicks, each list's EXPECTED clicks are summed exactly from the click model,
E[c_s] = sum_p exam(p) * attract(item_p) (no dice at all): the same comparison without the click
noise, so what is left is the variation between sessions. And `binary` = sum_p exam(p) * [item_p
rated in the held-out period]: the same lists if every held-out item were equally attractive
(the relevance of the offline NDCG), to tell "finds more of the items" from "finds the better-rated".

Statistics, sessions as the independent units (S sessions, c_s clicks of n_s shown):
    CTR        R = sum c_s / sum n_s
    SE(R)      sqrt(sum (c_s - R n_s)^2) / sum n_s                     (ratio estimator, linearised)
    R_a - R_b  with SE sqrt(sum z_s^2), z_s = (c_a,s - R_a n_a,s) / N_a - (c_b,s - R_b n_b,s) / N_b
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from services.simulator.clicks import ClickModel, examination, session_rng
from services.simulator.client import Recommender, RecommenderError
from services.simulator.replay import Session

ARMS = ("control", "treatment")


def arm_keys(arms: tuple[str, str]) -> tuple[str, str]:
    """Result keys of the two arms ("control", "control#2" when one arm is asked twice)."""
    a, b = arms
    return (a, b if b != a else f"{b}#2")


@dataclass
class PairedRun:
    """Per-session counts, aligned across arms (a session either has both lists or is in `errors`);
    keyed by arm_keys(arms)."""

    arms: tuple[str, str] = ARMS
    shown: dict[str, list[int]] = field(default_factory=lambda: {a: [] for a in ARMS})
    clicks: dict[str, list[int]] = field(default_factory=lambda: {a: [] for a in ARMS})
    expected: dict[str, list[float]] = field(default_factory=lambda: {a: [] for a in ARMS})  # E[clicks]
    binary: dict[str, list[float]] = field(default_factory=lambda: {a: [] for a in ARMS})  # exam-weighted hits
    models: dict[str, set[str]] = field(default_factory=lambda: {a: set() for a in ARMS})
    fallbacks: dict[str, int] = field(default_factory=lambda: {a: 0 for a in ARMS})
    identical_lists: int = 0  # sessions where both arms served the same list
    errors: dict[str, int] = field(default_factory=dict)


def ctr_se(clicks: np.ndarray, shown: np.ndarray) -> tuple[float, float]:
    """(CTR, its standard error) over sessions (ratio estimator)."""
    n = shown.sum()
    r = clicks.sum() / n
    return float(r), float(np.sqrt(((clicks - r * shown) ** 2).sum()) / n)


def diff_se(ca: np.ndarray, na: np.ndarray, cb: np.ndarray, nb: np.ndarray) -> tuple[float, float]:
    """(R_a - R_b, its standard error) for paired sessions."""
    ra, rb = ca.sum() / na.sum(), cb.sum() / nb.sum()
    z = (ca - ra * na) / na.sum() - (cb - rb * nb) / nb.sum()
    return float(ra - rb), float(np.sqrt((z ** 2).sum()))


def summarize(run: PairedRun) -> dict:
    a, b = arm_keys(run.arms)
    out: dict = {"sessions": len(run.shown[a]), "errors": dict(run.errors), "identical_lists": run.identical_lists}
    keys = (a, b)
    arrays = {arm: (np.asarray(run.clicks[arm], float), np.asarray(run.shown[arm], float)) for arm in keys}
    expect = {arm: (np.asarray(run.expected[arm], float), arrays[arm][1]) for arm in keys}
    binary = {arm: (np.asarray(run.binary[arm], float), arrays[arm][1]) for arm in keys}
    for arm, (c, n) in arrays.items():
        ctr, se = ctr_se(c, n)
        ex, ex_se = ctr_se(*expect[arm])
        bi, bi_se = ctr_se(*binary[arm])
        out[arm] = {"ctr": ctr, "se": se, "expected_ctr": ex, "expected_se": ex_se, "binary": bi, "binary_se": bi_se,
                    "clicks": int(c.sum()),
                    "shown": int(n.sum()), "models": sorted(run.models[arm]), "fallbacks": run.fallbacks[arm]}
    for key, src in (("difference", arrays), ("expected_difference", expect), ("binary_difference", binary)):
        d, se = diff_se(*src[a], *src[b])
        z = d / se if se > 0 else (0.0 if d == 0 else float(np.sign(d)) * float("inf"))
        out[key] = {"of": f"{a} - {b}", "ctr": d, "se": se, "z": z}
    return out


def play_paired(plan: list[Session], rec: Recommender, model: ClickModel, *, k: int = 10, seed: int = 0,
                exclude_seen: bool = True, concurrency: int = 8, arms: tuple[str, str] = ARMS,
                on_done: Callable[[], None] | None = None) -> PairedRun:
    """Ask both arms for every session and click each list with the session's own generator."""
    keys = arm_keys(arms)
    run = PairedRun(arms=arms, shown={x: [] for x in keys}, clicks={x: [] for x in keys},
                    expected={x: [] for x in keys}, binary={x: [] for x in keys}, models={x: set() for x in keys},
                    fallbacks={x: 0 for x in keys})
    lock = threading.Lock()

    def one(s: Session) -> None:
        try:
            served = [rec.recommend(s.user_id, k, exclude_seen, arm) for arm in arms]
        except RecommenderError as exc:
            with lock:
                run.errors[exc.kind] = run.errors.get(exc.kind, 0) + 1
            return
        clicks = [len(model.click(sv.items, s.next_items, session_rng(seed, s.user_id, s.index))) for sv in served]
        expected = [sum(model.probability(p, s.next_items.get(i)) for p, i in enumerate(sv.items)) for sv in served]
        binary = [sum(examination(p) * (i in s.next_items) for p, i in enumerate(sv.items)) for sv in served]
        with lock:
            for arm, sv, c, e, h in zip(keys, served, clicks, expected, binary, strict=True):
                run.binary[arm].append(h)
                run.shown[arm].append(len(sv.items))
                run.clicks[arm].append(c)
                run.expected[arm].append(e)
                run.models[arm].add(sv.model_version)
                run.fallbacks[arm] += sv.fallback is not None
            run.identical_lists += served[0].items == served[1].items

    def task(s: Session) -> None:
        try:
            one(s)
        finally:
            if on_done:
                on_done()

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="paired") as pool:
        list(pool.map(task, plan))
    return run
