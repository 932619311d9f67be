"""One PNG per scale curve (matplotlib, Agg: no display needed)."""

from __future__ import annotations

from pathlib import Path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_ann(rows: list[dict], sweeps: list[dict], path: Path) -> None:
    """Left: recall@100 vs speedup over exact, every setting, one line per (index, size).
    Right: the chosen point's p50 latency vs catalogue size per index."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    sizes = sorted({r["items"] for r in rows})
    for kind, marker in (("hnsw", "o"), ("ivfpq", "s")):
        for n in sizes:
            pts = [s for s in sweeps if s["index"] == kind and s["items"] == n]
            if kind == "ivfpq":  # one line per nprobe with the best k_factor
                best: dict[int, dict] = {}
                for s in pts:
                    p = s["setting"]["nprobe"]
                    if p not in best or s["recall"] > best[p]["recall"]:
                        best[p] = s
                pts = [best[p] for p in sorted(best)]
            ax1.semilogx([s["speedup_vs_exact"] for s in pts], [s["recall"] for s in pts], marker + "-",
                         label=f"{kind} {n:,}", alpha=0.8)
    ax1.axhline(0.99, color="grey", ls=":", lw=1)
    ax1.axvline(10, color="grey", ls=":", lw=1)
    ax1.set_xlabel("speedup vs exact (p50, 1 thread)")
    ax1.set_ylabel("recall@100")
    ax1.set_ylim(0.8, 1.001)
    ax1.legend(fontsize=7)
    ax1.set_title("recall / speed trade-off per setting")
    for kind, marker in (("exact", "^"), ("hnsw", "o"), ("ivfpq", "s")):
        pts = sorted((r for r in rows if r["index"] == kind), key=lambda r: r["items"])
        ax2.loglog([r["items"] for r in pts], [r["p50_us"] for r in pts], marker + "-", label=kind)
    ax2.set_xlabel("catalogue items")
    ax2.set_ylabel("p50 µs: cheapest setting reaching 0.99\n(else the best-recall one)")
    ax2.legend()
    ax2.set_title("query latency vs catalogue size")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_stream(rows: list[dict], recovery: list[dict], path: Path) -> None:
    """Left: events/s vs processes on 3 partitions. Right: lag recovery seconds vs processes."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.8))
    ax1.plot([r["processes"] for r in rows], [r["events_per_s"] for r in rows], "o-")
    ax1.set_xticks([r["processes"] for r in rows])
    ax1.set_xlabel("processor processes (3 partitions)")
    ax1.set_ylabel("events/s drained")
    ax1.set_ylim(bottom=0)
    ax1.set_title("throughput vs group members")
    ax2.bar([str(r["processes"]) for r in recovery], [r["recovery_s"] for r in recovery])
    ax2.set_xlabel("processor processes")
    ax2.set_ylabel("seconds to drain the backlog")
    if recovery:
        ax2.set_title(f"lag recovery after a {recovery[0]['pause_s']:.0f} s pause at {recovery[0]['rate_per_s']:.0f}/s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_online(rows: list[dict], path: Path) -> None:
    """Left: Redis bytes per user vs users per encoding. Middle / right: read p50 (solid) and p99
    (dashed) for one user and for a batch of 32, per encoding."""
    plt = _plt()
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(13, 4))
    for enc, marker, color in (("feast", "o", "tab:blue"), ("packed", "s", "tab:orange")):
        pts = sorted((r for r in rows if r["encoding"] == enc), key=lambda r: r["users"])
        x = [r["users"] for r in pts]
        ax1.semilogx(x, [r["bytes_per_user"] for r in pts], marker + "-", color=color, label=enc)
        for ax, suffix in ((ax2, ""), (ax3, "_batch32")):
            ax.loglog(x, [r["p50_us" + suffix] for r in pts], marker + "-", color=color, label=f"{enc} p50")
            ax.loglog(x, [r["p99_us" + suffix] for r in pts], marker + "--", color=color, label=f"{enc} p99")
    ax1.set_ylabel("bytes per user (INFO used_memory delta)")
    ax1.set_ylim(bottom=0)
    ax1.set_title("memory: Feast hash vs packed record")
    ax2.set_title("read of 1 user (closed loop)")
    ax3.set_title("read of 32 users, one round trip")
    for ax in (ax1, ax2, ax3):
        ax.set_xlabel("users in Redis")
        ax.legend(fontsize=7)
    ax2.set_ylabel("µs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_train(rows: list[dict], cross: dict, path: Path) -> None:
    """Epoch time vs interactions (log-log), the fitted power law and the budget line."""
    import numpy as np

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    n = [r["interactions"] for r in rows]
    ax.loglog(n, [r["epoch_s"] for r in rows], "o", label="measured (timed batches x batches/epoch)")
    b, budget, at = cross["exponent"], cross["budget_s"], cross["interactions_at_budget"]
    xs = np.geomspace(min(n), max(max(n), at) * 1.5, 50)
    ax.loglog(xs, budget * (xs / at) ** b, "-", alpha=0.6, label=f"fit: epoch ~ N^{b:.2f}")
    ax.axhline(budget, color="grey", ls=":", lw=1)
    ax.axvline(at, color="grey", ls=":", lw=1)
    ax.annotate(f"{budget / 3600:.0f} h at ~{at:,.0f}", (at, budget), fontsize=8,
                xytext=(5, -14), textcoords="offset points")
    ax.set_xlabel("interactions (training labels) per epoch")
    ax.set_ylabel("epoch seconds (CPU)")
    ax.set_title("two-tower epoch time vs data size")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
