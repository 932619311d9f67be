"""Distributed data-parallel training of the two-tower (torch.distributed, gloo on CPU).

    torchrun --nproc_per_node 2 -m minirec.train.ddp --run-id <run with build_training_set done>

Same loop as minirec.train.trainer, spread over W processes:
- every rank draws the same epoch permutation (same seed) and takes rows r, r+W, ... of
  each global batch of `batch_size` rows (DistributedSampler's striding, inside the batch);
- item vectors and targets of the whole global batch are all-gathered (with autograd), so
  each user row still sees the B-1 other positives as negatives, as in one process;
- DDP averages gradients over ranks; the loss of rank r is the mean over its B/W rows, so the
  averaged gradient is the gradient of the mean over all B rows: one process's update.
Differences from one process: the last batch is cut to a multiple of W (at most W-1 rows of
an epoch dropped), and float summation order differs, so runs are equal within noise, not
bit for bit. Validation runs on rank 0 and its score is broadcast (early stopping agrees).
Rank 0 then writes the artifacts exactly as `make train`'s train step does; the others exit.
To go multi-node: torchrun --nnodes N --rdzv-endpoint host:port (nothing here changes).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from minirec.model.two_tower import TwoTower, take
from minirec.train.trainer import KeepBest, TrainConfig, TrainResult, set_determinism


class Towers(nn.Module):
    """Both towers behind one forward, so DDP sees every parameter used in one call."""

    def __init__(self, model: TwoTower):
        super().__init__()
        self.model = model

    def forward(self, users: Mapping[str, torch.Tensor], items: Mapping[str, torch.Tensor]):
        return self.model.user_tower(users), self.model.item_tower(items)  # (b, d), (b, d)


def gathered_loss(u: torch.Tensor, v: torch.Tensor, t: torch.Tensor, log_q: torch.Tensor | None,
                  temperature: float, w: torch.Tensor | None = None) -> torch.Tensor:
    """Local u (b, d), v (b, d), targets t (b,) -> in-batch softmax over the global batch of W*b items;
    w (b,) or None scales each row's cross-entropy (the mean over the rows is returned)."""
    import torch.distributed as dist
    from torch.distributed.nn.functional import all_gather

    rank, world = dist.get_rank(), dist.get_world_size()
    v_all = torch.cat(all_gather(v), dim=0)  # (W*b, d), gradients flow back to each rank's v
    t_parts = [torch.empty_like(t) for _ in range(world)]
    dist.all_gather(t_parts, t)
    t_all = torch.cat(t_parts)  # (W*b,)
    logits = u @ v_all.T / temperature  # (b, W*b)
    if log_q is not None:
        logits = logits - log_q[t_all][None, :]
    own = torch.arange(len(t)) + rank * len(t)  # column of each row's own positive
    same = t[:, None] == t_all[None, :]
    same[torch.arange(len(t)), own] = False
    logits = logits.masked_fill(same, float("-inf"))
    if w is None:
        return F.cross_entropy(logits, own)
    return (F.cross_entropy(logits, own, reduction="none") * w).mean()


def train_ddp(model: TwoTower, users: Mapping[str, torch.Tensor], targets: torch.Tensor,
              items: Mapping[str, torch.Tensor], item_freq: np.ndarray,
              validate: Callable[[TwoTower], float], cfg: TrainConfig,
              weights: torch.Tensor | None = None) -> TrainResult:
    """minirec.train.trainer.train_two_tower's contract, run by every rank of an initialised gloo group.

    weights (N,) per label or None: the loss is the global batch's weighted mean, as in one process
    (each rank scales its rows by world / the batch's weight sum; DDP then averages the gradients)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    rank, world = dist.get_rank(), dist.get_world_size()
    set_determinism(cfg.seed, cfg.threads)
    g = torch.Generator().manual_seed(cfg.seed)  # same permutation on every rank
    q = torch.as_tensor((item_freq + 1.0) / (item_freq.sum() + len(item_freq)), dtype=torch.float32)
    log_q = torch.log(q) if cfg.logq else None
    ddp = DDP(Towers(model))  # broadcasts rank 0's initial weights
    opt = torch.optim.AdamW(ddp.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(targets)
    result = TrainResult(model=model, config={**asdict(cfg), "world_size": world})
    keep = KeepBest(model, cfg.patience)
    t0 = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        ddp.train()
        perm = torch.randperm(n, generator=g)
        total, rows = 0.0, 0
        for s in range(0, n, cfg.batch_size):
            idx = perm[s:s + cfg.batch_size]
            idx = idx[:len(idx) - len(idx) % world]  # equal shards for all_gather
            if len(idx) == 0:
                continue
            mine = idx[rank::world]
            t = targets[mine]
            u, v = ddp(take(users, mine), take(items, t))
            w = None if weights is None else weights[mine] * (world * len(mine) / weights[idx].sum())
            loss = gathered_loss(u, v, t, log_q, model.cfg.temperature, w)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)  # this rank's mean stands for the batch mean
            rows += len(idx)
        model.eval()
        score = torch.tensor([float(validate(model)) if rank == 0 else 0.0])
        dist.broadcast(score, src=0)
        score_f = float(score)
        result.history.append({"epoch": epoch, "loss": total / max(rows, 1), "valid_ndcg@10": score_f})
        if rank == 0 and cfg.progress:
            print(f"epoch {epoch}: loss {total / max(rows, 1):.3f} valid NDCG@10 {score_f:.4f}", flush=True)
        if keep.update(score_f, epoch):  # every rank sees the same broadcast score, so all stop together
            break
    keep.restore()
    result.best_epoch, result.best_valid, result.seconds = keep.epoch, keep.best, time.perf_counter() - t0
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="torchrun --nproc_per_node N -m minirec.train.ddp",
                                description=__doc__.splitlines()[0])
    p.add_argument("--run-id", required=True, help="a run whose build_training_set step is done")
    p.add_argument("--artifacts-dir", help="where the run folder lives (default ARTIFACTS_DIR)")
    p.add_argument("--data-dir", help="the lake (default DATA_DIR/ml-100k)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int)
    a = p.parse_args(argv)

    from pathlib import Path

    import torch.distributed as dist

    from minirec.pipeline.context import RunContext
    from minirec.pipeline.training import train

    dist.init_process_group("gloo")  # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR/PORT
    over = {k: Path(v) for k, v in (("artifacts_dir", a.artifacts_dir), ("data_dir", a.data_dir)) if v}
    train_over = {k: v for k, v in (("epochs", a.epochs), ("seed", a.seed)) if v is not None}
    # one model: every rank must make the same collective calls, and the ensemble's members would run
    # one after another on rank 0 alone once ranks > 0 have stopped after the first (_fit_and_stop)
    ctx = RunContext.from_settings(run_id=a.run_id, train={**train_over, "ensemble": 1,
                                                           "progress": dist.get_rank() == 0}, **over)
    rank = dist.get_rank()
    try:
        if rank == 0:
            out = train(ctx, fit=train_ddp)
            print(f"world {dist.get_world_size()}: valid NDCG@10 {out['valid_ndcg@10']:.4f} "
                  f"best epoch {out['best_epoch']} in {out['seconds']} s -> {ctx.run_dir}", flush=True)
        else:
            # the same preparation and the same collective calls, without writing artifacts
            train(ctx, fit=_fit_and_stop)
    except _Done:
        pass
    finally:
        dist.destroy_process_group()
    return 0


class _Done(Exception):
    """Raised by ranks > 0 after training, so only rank 0 writes the run's files."""


def _fit_and_stop(*args, **kwargs) -> TrainResult:
    train_ddp(*args, **kwargs)
    raise _Done


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
