"""Training loop for the two-tower model: in-batch sampled softmax with logQ.

For a batch of B (user, positive item) pairs the other B-1 positives act as
negatives. They were sampled in proportion to their frequency q_j, so the
softmax over-penalises popular items; subtracting log q_j from each logit
(the logQ correction, Yi et al. 2019) makes the loss an unbiased estimate of
the full softmax. Rows whose positive equals another row's positive are not
treated as negatives of each other. AdamW, early stopping on validation
NDCG@10, seeded and deterministic on CPU.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from minirec.model.two_tower import TwoTower, take


@dataclass
class TrainConfig:
    epochs: int = 6  # measured: validation NDCG@10 (w = 0) peaks at epoch 4-5, then the towers overfit
    batch_size: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 4  # epochs without a validation gain before stopping
    seed: int = 0
    threads: int = 1  # measured: 11 ms/step at 1 thread vs 18 ms at 2 on the shared 2-core box
    logq: bool = True
    # TwoTowerConfig.user_encoder: "mean" or "attention" (mean + causal sequence encoder); chosen on
    # validation: mean 0.3625 vs attention 0.3397 learned-only NDCG@10 (minirec/pipeline/README.md)
    user_encoder: str = "mean"
    recency_half_life_days: float | None = 30.0  # label weight 0.5 ** (age / half-life), age from the newest label
    # after early stopping, train the served towers again on train + validation labels for the best
    # epoch count (minirec.pipeline.training._refit); False serves the train-period model itself
    refit: bool = True
    # members of the towers (minirec.model.ensemble), seeds seed*N .. seed*N+N-1; 1 = one model. Chosen on
    # seeds 6-8, never run before (pipeline README, section 7): 3 members with the smoothed w choice served
    # 0.4034 / 0.4047 / 0.4008 NDCG@10 against one model's 0.3848 / 0.3886 / 0.3931; training takes ~3x
    ensemble: int = 3
    # the popularity weight w: None = chosen per run on validation by `pop_weight_rule`
    # (minirec.pipeline.pop_weight); a value of its POP_WEIGHTS fixes it (a hyperparameter chosen once)
    pop_weight: float | None = None
    # how w is chosen when not fixed: "bagged" since seeds 24-29, never run before, served 0.4021 mean NDCG@10
    # against "smooth" 0.3992 (pipeline README, section 8); "smooth" is the previous rule
    pop_weight_rule: str = "bagged"
    progress: bool = True


@dataclass
class TrainResult:
    model: TwoTower  # weights of the best validation epoch
    history: list[dict[str, float]] = field(default_factory=list)  # one row per epoch
    best_epoch: int = 0
    best_valid: float = float("nan")
    seconds: float = 0.0
    config: dict = field(default_factory=dict)


class KeepBest:
    """Early stopping on the validation score: keeps a copy of the best epoch's weights and says stop
    after `patience` epochs without a gain; restore() loads the best weights back into the model."""

    def __init__(self, model: torch.nn.Module, patience: int):
        self.model, self.patience = model, patience
        self.best, self.epoch, self.bad = -1.0, 0, 0
        self.state: dict | None = None

    def update(self, score: float, epoch: int) -> bool:
        """Record one epoch's score; True when training should stop."""
        if score > self.best:
            self.best, self.epoch, self.bad = score, epoch, 0
            self.state = copy.deepcopy(self.model.state_dict())
            return False
        self.bad += 1
        return self.bad >= self.patience

    def restore(self) -> None:
        if self.state is not None:
            self.model.load_state_dict(self.state)


def set_determinism(seed: int, threads: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def in_batch_loss(u: torch.Tensor, v: torch.Tensor, targets: torch.Tensor, log_q: torch.Tensor | None,
                  temperature: float, weights: torch.Tensor | None = None) -> torch.Tensor:
    """u (B, d), v (B, d) normalised; targets (B,) item index; log_q (M,) or None; weights (B,) or None
    -> scalar loss (the weighted mean of the rows' cross-entropies)."""
    logits = u @ v.T / temperature  # (B, B): row = user, column = in-batch item
    if log_q is not None:
        logits = logits - log_q[targets][None, :]
    same = targets[None, :] == targets[:, None]  # (B, B) duplicated positives
    same.fill_diagonal_(False)
    logits = logits.masked_fill(same, float("-inf"))
    if weights is None:
        return F.cross_entropy(logits, torch.arange(len(targets)))
    ce = F.cross_entropy(logits, torch.arange(len(targets)), reduction="none")  # (B,)
    return (ce * weights).sum() / weights.sum()


def recency_weights(label_times: np.ndarray, half_life_days: float | None) -> torch.Tensor | None:
    """(N,) datetime64 label times -> (N,) weights 0.5 ** (days before the newest label / half-life),
    mean 1; None without a half-life. Recent labels then count more: the temporal split scores what
    users do after the cut, and tastes and popularity drift (measured: minirec.pipeline.diagnose)."""
    if half_life_days is None:
        return None
    t = np.asarray(label_times, dtype="datetime64[s]").astype(np.int64)
    w = 0.5 ** ((t.max() - t) / 86_400.0 / half_life_days)
    return torch.as_tensor(w / w.mean(), dtype=torch.float32)


def sampling_log_q(item_freq: np.ndarray) -> torch.Tensor:
    """(M,) training counts -> (M,) log of the add-one smoothed in-batch sampling probability."""
    q = torch.as_tensor((item_freq + 1.0) / (item_freq.sum() + len(item_freq)), dtype=torch.float32)
    return torch.log(q)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def train_step(model: TwoTower, opt: torch.optim.Optimizer, users: Mapping[str, torch.Tensor],
               targets: torch.Tensor, items: Mapping[str, torch.Tensor], idx: torch.Tensor,
               log_q: torch.Tensor | None, weights: torch.Tensor | None = None) -> float:
    """One optimiser step on the labels `idx` (B,) -> the batch's mean loss. The whole cost of an
    epoch is its batches' steps (plus one validation), so minirec.scale.training times this."""
    t = targets[idx]  # (B,)
    u = model.user_tower(take(users, idx))  # (B, d)
    v = model.item_tower(take(items, t))  # (B, d)
    loss = in_batch_loss(u, v, t, log_q, model.cfg.temperature, None if weights is None else weights[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach())


def train_two_tower(model: TwoTower, users: Mapping[str, torch.Tensor], targets: torch.Tensor,
                    items: Mapping[str, torch.Tensor], item_freq: np.ndarray,
                    validate: Callable[[TwoTower], float] | None, cfg: TrainConfig,
                    weights: torch.Tensor | None = None) -> TrainResult:
    """users: encoded (N, ...) features per training label; targets (N,) catalogue item positions
    0..M-1 into `items` (encoded (M, ...)); item_freq (M,) training counts; validate -> NDCG@10, or
    None for a refit: exactly cfg.epochs epochs, the last one kept (its curve reads NaN);
    weights (N,) per-label loss weights (recency_weights) or None."""
    set_determinism(cfg.seed, cfg.threads)
    g = torch.Generator().manual_seed(cfg.seed)
    log_q = sampling_log_q(item_freq) if cfg.logq else None  # (M,)
    opt = make_optimizer(model, cfg)
    n = len(targets)
    steps = (n + cfg.batch_size - 1) // cfg.batch_size
    result = TrainResult(model=model, config=asdict(cfg))
    keep = KeepBest(model, cfg.patience)
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.epochs * steps, desc="two-tower", disable=not cfg.progress, mininterval=2.0)
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=g)
        total = 0.0
        for s in range(0, n, cfg.batch_size):
            idx = perm[s:s + cfg.batch_size]
            total += train_step(model, opt, users, targets, items, idx, log_q, weights) * len(idx)
            bar.update(1)
        model.eval()
        score = float(validate(model)) if validate is not None else float("nan")
        result.history.append({"epoch": epoch, "loss": total / n, "valid_ndcg@10": score})
        bar.set_postfix(loss=f"{total / n:.3f}", valid_ndcg=f"{score:.4f}")
        if validate is None:
            keep.epoch = epoch  # a refit keeps its last epoch
        elif keep.update(score, epoch):
            break
    bar.close()
    keep.restore()
    result.best_epoch, result.best_valid, result.seconds = keep.epoch, keep.best, time.perf_counter() - t0
    return result


def plot_history(history: list[dict[str, float]], path: Path, title: str = "two-tower training") -> Path:
    """Loss and validation NDCG@10 per epoch, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, ax1 = plt.subplots(figsize=(6, 3.5))
    ax1.plot(ep, [h["loss"] for h in history], "o-", color="tab:blue", label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("in-batch softmax loss", color="tab:blue")
    ax2 = ax1.twinx()
    ax2.plot(ep, [h["valid_ndcg@10"] for h in history], "s-", color="tab:orange", label="valid NDCG@10")
    ax2.set_ylabel("validation NDCG@10", color="tab:orange")
    ax1.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
