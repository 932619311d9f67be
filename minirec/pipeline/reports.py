"""The evaluation's markdown table and bar plot (artifacts/latest/results.{md,png})."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from minirec.pipeline.context import MODEL_KEY

GROUP_COLUMNS = ("ndcg@10", "recall@10", "hit@10", "ndcg@100", "recall@100", "coverage@10")


def results_markdown(results: dict[str, dict[str, dict[str, Any]]], comparison: dict[str, Any]) -> str:
    lines = []
    for part in ("test", "valid"):
        ordered = sorted(results[part].items(), key=lambda kv: -kv[1]["ndcg@10"])
        lines += [f"### {part} split ({results[part][MODEL_KEY]['users']} users, full-catalogue ranking, "
                  "seen items masked)", "",
                  "| model | " + " | ".join(f"{m}@{k}" for k in (10, 50, 100) for m in ("NDCG", "Recall", "Hit", "MRR"))
                  + " | Cov@10 |",
                  "|---|" + "---|" * 13]
        for name, m in ordered:
            cells = [f"{m[f'{x}@{k}']:.4f}" for k in (10, 50, 100) for x in ("ndcg", "recall", "hit", "mrr")]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {m['coverage@10']:.3f} |")
        lines.append("")
        lines += _groups_table(part, ordered)
    for part in ("test", "valid"):
        for key, who in ((f"bootstrap_vs_best_{part}", MODEL_KEY), (f"bootstrap_learned_only_vs_best_{part}",
                                                                     "learned_only")):
            b = comparison[key]
            lines.append(f"Paired bootstrap ({part} users, {b['n_boot']} resamples) of NDCG@10 {who} − "
                         f"{comparison[f'best_baseline_{part}']} (best baseline on {part}): mean {b['mean']:+.4f}, "
                         f"95 % CI [{b['low']:+.4f}, {b['high']:+.4f}] over {b['users']} users.")
    lines.append(f"Baseline hyperparameters (chosen on validation): {comparison['baseline_params']}.")
    return "\n".join(lines) + "\n"


def _groups_table(part: str, ordered: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Warm (history before the cut) and cold users side by side, the same columns for each."""
    first = ordered[0][1]
    head = " | ".join(f"{g} {c}" for g in ("warm", "cold") for c in GROUP_COLUMNS)
    lines = [f"{part} split by user group: warm = history before the cut ({first['warm']['users']} users), "
             f"cold = none ({first['cold']['users']} users)", "",
             f"| model | {head} |", "|---|" + "---|" * (2 * len(GROUP_COLUMNS))]
    for name, m in ordered:
        cells = [f"{m[g][c]:.3f}" if c.startswith("coverage") else f"{m[g][c]:.4f}"
                 for g in ("warm", "cold") for c in GROUP_COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + [""]


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
