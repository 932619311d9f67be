"""Quality gate: refuse to ship a model that is not better.

Rules (on the validation split, NDCG@10):
1. the candidate beats the best baseline (strictly);
2. the candidate is not worse than the current production model by more
   than `tolerance` (production's recorded validation NDCG@10).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


class GateError(RuntimeError):
    """The candidate failed the gate; nothing was promoted."""


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    candidate: float
    best_baseline: str
    best_baseline_value: float
    production: float | None
    tolerance: float
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


def decide(valid_metrics: dict[str, dict[str, float]], candidate: str = "two_tower",
           production: float | None = None, tolerance: float = 0.005,
           metric: str = "ndcg@10", versus_production: float | None = None) -> GateDecision:
    """valid_metrics: {"model": {"ndcg@10": ...}} on the validation split.

    versus_production: the candidate's value that is compared with production's (default: the
    candidate's own entry); the pipeline passes its retrieval stage, see pipeline/gating.py."""
    cand = float(valid_metrics[candidate][metric])
    mine = cand if versus_production is None else float(versus_production)
    baselines = {k: float(v[metric]) for k, v in valid_metrics.items() if k != candidate}
    best_name = max(baselines, key=baselines.get)
    best = baselines[best_name]
    problems = []
    if not cand > best:
        problems.append(f"candidate validation {metric} {cand:.4f} does not beat the best baseline "
                        f"{best_name} {best:.4f}")
    if production is not None and mine < production - tolerance:
        problems.append(f"candidate validation {metric} {mine:.4f} is below production {production:.4f} "
                        f"minus tolerance {tolerance}")
    if problems:
        msg = "quality gate failed: " + "; ".join(problems) + "; nothing was promoted"
    else:
        msg = (f"quality gate passed: candidate {metric} {cand:.4f} > best baseline {best_name} {best:.4f}"
               + (f", production {production:.4f} (tolerance {tolerance})" if production is not None else
                  ", no production model yet"))
    return GateDecision(passed=not problems, candidate=cand, best_baseline=best_name,
                        best_baseline_value=best, production=production, tolerance=tolerance, message=msg)
