"""Training cost curve: two-tower epoch time against interactions, on CPU, and the 1-hour crossing.

Per size N (interactions):

    synthetic lake (minirec.data.synthetic; users = N / ~21 at the generator's mean of 20 events
    per user, items = max(2000, users / 10)) -> every interaction a training label, tower inputs
    built directly from the log (vectorised; see `tower_inputs`) -> TwoTower at that vocabulary
    -> `n_batches` timed calls of minirec.train.trainer.train_step (the trainer's own step:
    in-batch softmax + logQ, AdamW), after `warmup` untimed ones, torch threads = `threads`
    -> epoch_s = batches_per_epoch x s_per_batch  (an extrapolation from the timed batches: every
    batch of an epoch has the same shapes and work, so the mean step time carries; validation and
    the feature build are not in it).

Why the step time grows with N: AdamW updates every parameter every step (dense embeddings), and
the user and item embedding tables grow with the data, so an epoch costs ~ N x (U + M) / B:
super-linear in N. `crossing` fits log epoch_s = a + b log N over the measured sizes (a straight
line in log-log; b = 1 is linear) and solves for the N whose epoch takes the budget.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

MEAN_EVENTS = 20.0  # the generator's default events per user (1 + geometric, so ~21 before dedup)


def tower_inputs(lake: Path) -> tuple[dict, object, dict, np.ndarray, dict]:
    """A synthetic lake -> (encoded users per label, targets (N,), encoded items, item_freq (M,), vocab).

    Per label (one per interaction, in time order per user): uid, age bucket, gender, occupation
    codes from the users table; hist = the user's previous <= 20 items, newest first (what
    `last_items` holds at that moment); dense = log1p of the user's prior event count in the
    u_cnt_all slot, zeros elsewhere (values do not change a step's arithmetic). Items: id, genre
    multi-hot, decade bucket; the same tensors minirec.model.two_tower.encode_* give."""
    import pandas as pd
    import torch

    from minirec.data.schema import table_paths
    from minirec.features.tables import AGE_EDGES, GENRES, LAST_N, genre_multi_hot
    from minirec.model.two_tower import N_DENSE, N_YEAR, YEAR_MIN

    paths = table_paths(lake)
    users = pd.read_parquet(paths["users"]).sort_values("user_id").reset_index(drop=True)
    items = pd.read_parquet(paths["items"]).sort_values("item_id").reset_index(drop=True)
    inter = pd.read_parquet(paths["interactions"], columns=["user_id", "item_id", "event_timestamp"])
    uid = inter["user_id"].to_numpy(np.int64)
    order = np.lexsort((inter["item_id"].to_numpy(np.int64), pd.DatetimeIndex(inter["event_timestamp"]).asi8, uid))
    uid = uid[order]
    u_pos = np.searchsorted(users["user_id"].to_numpy(np.int64), uid)  # (N,) user row
    i_pos = np.searchsorted(items["item_id"].to_numpy(np.int64), inter["item_id"].to_numpy(np.int64)[order])
    del inter
    n = len(uid)
    first = np.searchsorted(uid, uid, side="left")  # (N,) index of the user's first event
    hist = np.zeros((n, LAST_N), dtype=np.int64)  # (N, 20) item index + 1 (0 = padding)
    rows = np.arange(n)
    for j in range(LAST_N):  # column j = the (j+1)-th previous event of the same user
        prev = rows - 1 - j
        ok = prev >= first
        hist[ok, j] = i_pos[prev[ok]] + 1
    dense = np.zeros((n, N_DENSE), dtype=np.float32)
    dense[:, 2] = np.log1p(rows - first)
    occs = sorted(users["occupation"].astype(str).unique())
    occ_code = np.searchsorted(occs, users["occupation"].astype(str).to_numpy()) + 1
    age = np.searchsorted(np.asarray(AGE_EDGES), users["age"].to_numpy(), side="right")
    gender = np.where(users["gender"].to_numpy() == "M", 1, 2)
    users_x = {"uid": torch.as_tensor(u_pos + 1), "age": torch.as_tensor(age[u_pos].astype(np.int64)),
               "gender": torch.as_tensor(gender[u_pos].astype(np.int64)),
               "occ": torch.as_tensor(occ_code[u_pos].astype(np.int64)),
               "hist": torch.as_tensor(hist), "dense": torch.as_tensor(dense)}
    year = items["year"].to_numpy(np.int64)
    items_x = {"iid": torch.arange(1, len(items) + 1),
               "genres": torch.as_tensor(genre_multi_hot(items["genres"].tolist())),
               "year": torch.as_tensor(np.clip((year - YEAR_MIN) // 10 + 1, 1, N_YEAR - 1)),
               "logpop": torch.zeros(len(items))}
    assert users_x["dense"].shape[1] == N_DENSE and items_x["genres"].shape[1] == len(GENRES)
    vocab = {"user_ids": users["user_id"].astype(int).tolist(), "item_ids": items["item_id"].astype(int).tolist(),
             "occupations": occs}
    freq = np.bincount(i_pos, minlength=len(items)).astype(np.float64)
    return users_x, torch.as_tensor(i_pos), items_x, freq, vocab


def time_steps(users_x: dict, targets, items_x: dict, freq: np.ndarray, vocab: dict, n_batches: int,
               warmup: int = 3, batch_size: int = 512, threads: int = 2, seed: int = 0) -> dict:
    """The trainer's step on random batches -> seconds per batch (mean of n_batches timed) and sizes."""
    import torch

    from minirec.model.two_tower import TwoTower, TwoTowerConfig
    from minirec.train.trainer import (
        TrainConfig,
        make_optimizer,
        sampling_log_q,
        set_determinism,
        train_step,
    )

    cfg = TrainConfig(batch_size=batch_size, threads=threads, seed=seed)
    set_determinism(cfg.seed, cfg.threads)
    model = TwoTower(TwoTowerConfig(**vocab))
    model.train()
    opt = make_optimizer(model, cfg)
    log_q = sampling_log_q(freq)
    g = torch.Generator().manual_seed(seed)
    n = len(targets)
    perm = torch.randperm(n, generator=g)
    batches = [perm[(k * batch_size) % n:][:batch_size] for k in range(warmup + n_batches)]
    for idx in batches[:warmup]:
        train_step(model, opt, users_x, targets, items_x, idx, log_q)
    t0 = time.perf_counter()
    for idx in batches[warmup:]:
        train_step(model, opt, users_x, targets, items_x, idx, log_q)
    s_per_batch = (time.perf_counter() - t0) / n_batches
    params = sum(p.numel() for p in model.parameters())
    return {"s_per_batch": s_per_batch, "params": int(params), "torch_threads": torch.get_num_threads()}


def epoch_row(interactions: int, users: int, items: int, s_per_batch: float, batch_size: int, **extra) -> dict:
    """One curve point: batches per epoch and the extrapolated epoch time."""
    batches = math.ceil(interactions / batch_size)
    return {"interactions": interactions, "users": users, "items": items, "batch_size": batch_size,
            "batches_per_epoch": batches, "s_per_batch": round(s_per_batch, 5),
            "epoch_s": round(batches * s_per_batch, 1), **extra}


def crossing(rows: list[dict], budget_s: float = 3600.0) -> dict:
    """Least-squares line through (log N, log epoch_s) -> the N whose epoch takes budget_s.

    Returns the exponent b (epoch_s ~ N^b), the fitted crossing N, and whether it lies inside the
    measured range (interpolated) or beyond it (extrapolated)."""
    n = np.log([r["interactions"] for r in rows])
    t = np.log([r["epoch_s"] for r in rows])
    if len(rows) < 2:
        raise ValueError("crossing needs at least two sizes")
    b, a = np.polyfit(n, t, 1)
    cross = float(np.exp((math.log(budget_s) - a) / b))
    lo, hi = min(r["interactions"] for r in rows), max(r["interactions"] for r in rows)
    return {"budget_s": budget_s, "exponent": round(float(b), 3), "interactions_at_budget": round(cross),
            "extrapolated": not lo <= cross <= hi,
            "fit": "log epoch_s = a + b log interactions, least squares over the measured sizes"}


def run_size(n_interactions: int, root: Path, n_batches: int = 30, threads: int = 2, seed: int = 0,
             batch_size: int = 512, progress: Callable[[str], None] = lambda s: None) -> dict:
    """One size: synthetic lake -> tower inputs -> timed steps -> a curve row."""
    from minirec.data.synthetic import SyntheticConfig, generate

    n_users = max(100, round(n_interactions / (MEAN_EVENTS + 1)))
    lake = root / f"lake_{n_interactions}"
    progress(f"{n_interactions:,} interactions: synthetic lake ({n_users:,} users)")
    generate(SyntheticConfig(n_users=n_users, n_items=max(2_000, n_users // 10), seed=seed), lake)
    progress(f"{n_interactions:,} interactions: tower inputs")
    users_x, targets, items_x, freq, vocab = tower_inputs(lake)
    shutil.rmtree(lake, ignore_errors=True)
    progress(f"{n_interactions:,} interactions: {n_batches} timed steps")
    t = time_steps(users_x, targets, items_x, freq, vocab, n_batches, batch_size=batch_size, threads=threads,
                   seed=seed)
    extra = {"target_interactions": n_interactions, "timed_batches": n_batches, "params": t["params"],
             "torch_threads": t["torch_threads"]}
    return epoch_row(len(targets), len(vocab["user_ids"]), len(vocab["item_ids"]), t["s_per_batch"], batch_size,
                     **extra)
