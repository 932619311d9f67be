"""Readout statistics. Library primitives where they exist; our code where they do not.

    scipy / statsmodels: Welch's t-test (ttest_ind, equal_var=False), the two-proportion z-test
                         (proportions_ztest), chi-square goodness of fit (chisquare), normal power
                         (NormalIndPower), normal quantiles
    ours:                the delta method for ratio metrics with users as the unit, CUPED, the SRM
                         gate, and the glue that turns each into an Effect

Conventions: arrays are per-user values, one entry per user in the arm; `diff` is treatment minus
control in the metric's own unit, `rel` = diff / control; intervals are two-sided at 1 - alpha.
Functions reduce over the last axis, so a (n_experiments, n_users) array runs many simulated
experiments at once (tests/ab, minirec/ab/validate.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import stats

SRM_ALPHA = 0.001  # a split this unlikely under the configured weights blocks the readout


@dataclass(frozen=True)
class Effect:
    metric: str
    method: str
    control: float
    treatment: float
    diff: float
    rel: float
    se: float
    ci: tuple[float, float]
    p: float

    def to_dict(self) -> dict:
        return asdict(self)


def _effect(metric, method, c, t, se, p, alpha, dof=None) -> Effect:
    q = stats.norm.ppf(1 - alpha / 2) if dof is None else stats.t.ppf(1 - alpha / 2, dof)
    diff = t - c
    return Effect(metric, method, float(c), float(t), float(diff), float(diff / c) if c else float("nan"),
                  float(se), (float(diff - q * se), float(diff + q * se)), float(p))


# ------------------------------------------------------------------ means: Welch
def welch(y_c: np.ndarray, y_t: np.ndarray, alpha: float = 0.05, metric: str = "mean") -> Effect:
    """Difference of means with unequal variances (scipy's Welch t-test, Welch-Satterthwaite df)."""
    res = stats.ttest_ind(y_t, y_c, equal_var=False)
    vc, vt = np.var(y_c, ddof=1) / len(y_c), np.var(y_t, ddof=1) / len(y_t)
    se = np.sqrt(vc + vt)
    dof = (vc + vt) ** 2 / (vc**2 / (len(y_c) - 1) + vt**2 / (len(y_t) - 1))
    return _effect(metric, "welch_t", np.mean(y_c), np.mean(y_t), se, res.pvalue, alpha, dof)


def welch_p(y_c: np.ndarray, y_t: np.ndarray) -> np.ndarray:
    """p-values only, vectorised over leading axes (simulations)."""
    return stats.ttest_ind(y_t, y_c, equal_var=False, axis=-1).pvalue


# ------------------------------------------------------------------ proportions: z-test
def two_proportion(k_c: int, n_c: int, k_t: int, n_t: int, alpha: float = 0.05,
                   metric: str = "conversion") -> Effect:
    """Share of users with the event: statsmodels' pooled z-test for p, an unpooled Wald interval."""
    from statsmodels.stats.proportion import proportions_ztest

    _, p = proportions_ztest([k_t, k_c], [n_t, n_c])
    pc, pt = k_c / n_c, k_t / n_t
    se = np.sqrt(pc * (1 - pc) / n_c + pt * (1 - pt) / n_t)
    return _effect(metric, "two_proportion_z", pc, pt, se, p, alpha)


# ------------------------------------------------------------------ ratios: the delta method
def ratio_and_variance(num: np.ndarray, den: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R = sum(num) / sum(den) over users and Var(R) by the delta method, users as the unit.

    With per-user means mu_y (num), mu_x (den), variances and covariance over n users,
    R = mu_y / mu_x and, to first order,
        Var(R) = (var_y / mu_x^2 - 2 mu_y cov_xy / mu_x^3 + mu_y^2 var_x / mu_x^4) / n.
    A user's clicks and impressions move together, so this is larger than the binomial
    p(1 - p) / sum(den) that treats every impression as independent (naive_ratio_variance)."""
    n = num.shape[-1]
    mx, my = den.mean(-1), num.mean(-1)
    vx, vy = den.var(-1, ddof=1), num.var(-1, ddof=1)
    cxy = ((den - mx[..., None]) * (num - my[..., None])).sum(-1) / (n - 1)
    var = (vy / mx**2 - 2 * my * cxy / mx**3 + my**2 * vx / mx**4) / n
    return my / mx, var


def naive_ratio_variance(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """The per-impression binomial variance p(1 - p) / N: wrong when impressions cluster in users."""
    p = num.sum(-1) / den.sum(-1)
    return p * (1 - p) / den.sum(-1)


def ratio_z(num_c, den_c, num_t, den_t, naive: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(diff, se, two-sided p) of R_t - R_c, vectorised; `naive` uses the per-impression variance."""
    rc, vc = ratio_and_variance(num_c, den_c)
    rt, vt = ratio_and_variance(num_t, den_t)
    if naive:
        vc, vt = naive_ratio_variance(num_c, den_c), naive_ratio_variance(num_t, den_t)
    se = np.sqrt(vc + vt)
    z = (rt - rc) / se
    return rt - rc, se, 2 * stats.norm.sf(np.abs(z))


def ratio_effect(num_c, den_c, num_t, den_t, alpha: float = 0.05, metric: str = "ctr") -> Effect:
    """CTR-like metric (sum of clicks / sum of impressions) per arm, delta-method z-test."""
    num_c, den_c, num_t, den_t = (np.asarray(a, dtype=float) for a in (num_c, den_c, num_t, den_t))
    diff, se, p = ratio_z(num_c, den_c, num_t, den_t)
    return _effect(metric, "delta_method_z", num_c.sum() / den_c.sum(), num_t.sum() / den_t.sum(), se, p, alpha)


# ------------------------------------------------------------------ CUPED
@dataclass(frozen=True)
class Cuped:
    theta: float
    rho: float  # correlation of the metric with the pre-period covariate (pooled over arms)
    variance_ratio: float  # Var(adjusted) / Var(raw) = 1 - rho^2 (in sample)


def cuped_adjust(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, Cuped]:
    """y - theta (x - mean x), theta = Cov(y, x) / Var(x), over all users of both arms.

    x is measured before the experiment, so it is independent of the arm: the adjustment leaves
    the difference of means unbiased and removes the part of Var(y) that x explains."""
    y, x = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    vx = x.var(ddof=1)
    if vx == 0:
        return y.copy(), Cuped(0.0, 0.0, 1.0)
    theta = np.cov(y, x, ddof=1)[0, 1] / vx
    adj = y - theta * (x - x.mean())
    rho = np.corrcoef(y, x)[0, 1]
    return adj, Cuped(float(theta), float(rho), float(adj.var(ddof=1) / y.var(ddof=1)))


def cuped_effect(y_c, x_c, y_t, x_t, alpha: float = 0.05, metric: str = "mean") -> tuple[Effect, Cuped]:
    """Welch on CUPED-adjusted values; theta pooled over both arms (the arm does not enter x)."""
    y = np.concatenate([y_c, y_t])
    adj, info = cuped_adjust(y, np.concatenate([x_c, x_t]))
    e = welch(adj[: len(y_c)], adj[len(y_c):], alpha, metric)
    return replace(e, method="cuped_welch_t"), info


# ------------------------------------------------------------------ SRM
@dataclass(frozen=True)
class SRM:
    chi2: float
    p: float
    blocked: bool
    observed: dict[str, int]
    expected: dict[str, float]


def srm(observed: dict[str, int], weights: dict[str, float], alpha: float = SRM_ALPHA) -> SRM:
    """Chi-square of users per arm against the configured weights; p < alpha blocks the readout."""
    names = list(weights)
    counts = np.array([observed.get(v, 0) for v in names], dtype=float)
    w = np.array([weights[v] for v in names], dtype=float)
    expected = counts.sum() * w / w.sum()
    res = stats.chisquare(counts, expected)
    return SRM(float(res.statistic), float(res.pvalue), bool(res.pvalue < alpha),
               {v: int(c) for v, c in zip(names, counts, strict=True)},
               {v: float(e) for v, e in zip(names, expected, strict=True)})


# ------------------------------------------------------------------ power, MDE, sample size
def power(mde_abs: float, sd: float, n_per_arm: float, alpha: float = 0.05) -> float:
    """Probability that a two-sided test at alpha detects a true difference mde_abs (equal arms)."""
    from statsmodels.stats.power import NormalIndPower

    return float(NormalIndPower().power(effect_size=mde_abs / sd, nobs1=n_per_arm, alpha=alpha, ratio=1.0))


def sample_size(mde_abs: float, sd: float, power_: float = 0.8, alpha: float = 0.05) -> float:
    """Users per arm for `power_` at a true difference mde_abs (sd: per-user standard deviation)."""
    from statsmodels.stats.power import NormalIndPower

    return float(NormalIndPower().solve_power(effect_size=mde_abs / sd, power=power_, alpha=alpha, ratio=1.0))


def mde(sd: float, n_per_arm: float, power_: float = 0.8, alpha: float = 0.05) -> float:
    """Smallest true difference detected with probability `power_` at n users per arm."""
    from statsmodels.stats.power import NormalIndPower

    es = NormalIndPower().solve_power(nobs1=n_per_arm, power=power_, alpha=alpha, ratio=1.0)
    return float(es * sd)


def proportion_power(p_c: float, p_t: float, n_per_arm: float, alpha: float = 0.05) -> float:
    """Power of the two-proportion z-test (Cohen's h effect size, statsmodels)."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    h = proportion_effectsize(p_t, p_c)
    return float(NormalIndPower().power(effect_size=h, nobs1=n_per_arm, alpha=alpha, ratio=1.0))


def proportion_sample_size(p_c: float, p_t: float, power_: float = 0.8, alpha: float = 0.05) -> float:
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    h = proportion_effectsize(p_t, p_c)
    return float(NormalIndPower().solve_power(effect_size=h, power=power_, alpha=alpha, ratio=1.0))
