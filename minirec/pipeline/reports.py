"""The evaluation's markdown table and bar plot (artifacts/latest/results.{md,png})."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from minirec.pipeline.context import MODEL_KEY


def results_markdown(results: dict[str, dict[str, dict[str, float]]], comparison: dict[str, Any]) -> str:
    lines = []
    for part in ("test", "valid"):
        lines += [f"### {part} split ({results[part][MODEL_KEY]['users']} users, full-catalogue ranking, "
                  "seen items masked)", "",
                  "| model | " + " | ".join(f"{m}@{k}" for k in (10, 50, 100) for m in ("NDCG", "Recall", "Hit", "MRR"))
                  + " | Cov@10 |",
                  "|---|" + "---|" * 13]
        for name, m in sorted(results[part].items(), key=lambda kv: -kv[1]["ndcg@10"]):
            cells = [f"{m[f'{x}@{k}']:.4f}" for k in (10, 50, 100) for x in ("ndcg", "recall", "hit", "mrr")]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {m['coverage@10']:.3f} |")
        lines.append("")
    b = comparison["bootstrap_vs_best_test"]
    lines.append(f"Paired bootstrap (test users, {b['n_boot']} resamples) of NDCG@10 two_tower − "
                 f"{comparison['best_baseline_test']} (best baseline on test): mean {b['mean']:+.4f}, "
                 f"95 % CI [{b['low']:+.4f}, {b['high']:+.4f}] over {b['users']} users.")
    bv = comparison["bootstrap_vs_best_valid"]
    lines.append(f"Against {comparison['best_baseline_valid']} (best baseline on validation): mean "
                 f"{bv['mean']:+.4f}, 95 % CI [{bv['low']:+.4f}, {bv['high']:+.4f}].")
    lines.append(f"Baseline hyperparameters (chosen on validation): {comparison['baseline_params']}.")
    return "\n".join(lines) + "\n"


def plot_results(test: dict[str, dict[str, float]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(test, key=lambda k: -test[k]["ndcg@10"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("ndcg", "recall"), strict=True):
        x = np.arange(len(names))
        for j, k in enumerate((10, 50, 100)):
            ax.bar(x + (j - 1) * 0.27, [test[n][f"{metric}@{k}"] for n in names], width=0.27, label=f"@{k}")
        ax.set_xticks(x, names, rotation=20)
        ax.set_title(f"test {metric.upper()}@K")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
