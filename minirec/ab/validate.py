"""Simulation studies that prove the readout's statistics on experiments whose truth is known.

    `make ab-validate` -> artifacts/ab/validation.json
        aa_fpr                  A/A, fixed horizon, delta-method CTR test: share of 1,000 experiments
                                with p < 0.05 (should be ~0.05)
        peeking_fpr_naive       A/A, the same test checked at each of 20 daily looks, stop at the first
                                p < 0.05 (rises well above 0.05)
        peeking_fpr_sequential  the same looks with the mSPRT always-valid p-value (stays <= 0.05)
        power_predicted         the calculator's power for a known lift (two-proportion z-test)
        power_observed          share of 1,000 simulated experiments with that lift detected

The tests (tests/ab/test_*.py) call the same functions with the same seeds and assert the
ranges the issue sets; this module only runs them and writes the numbers.

Synthetic users (`users`): activity a ~ Gamma(2, 1); impressions 1 + Poisson(5 a); a user's click
probability q ~ Beta(2, 28) (mean 0.067, like the simulator's CTR), times (1 + lift) in treatment;
clicks ~ Binomial(impressions, q); pre-period activity Poisson(10 a) (correlated with clicks
through a). Clicks of one user are correlated (same q), which is why CTR needs the delta method.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from minirec.ab import sequential, stats

ALPHA = 0.05


def users(rng: np.random.Generator, shape: tuple[int, ...], lift: float = 0.0) -> dict[str, np.ndarray]:
    """Per-user impressions, clicks and pre-period activity; `shape` = (..., users)."""
    a = rng.gamma(2.0, 1.0, shape)
    imps = 1 + rng.poisson(5 * a)
    q = np.minimum(rng.beta(2.0, 28.0, shape) * (1 + lift), 1.0)
    return {"impressions": imps, "clicks": rng.binomial(imps, q), "pre": rng.poisson(10 * a)}


def aa_study(n_exp: int = 1000, n_users: int = 1000, seed: int = 1) -> dict:
    """Fixed-horizon A/A: false-positive rates of the delta-method, naive and Welch tests."""
    rng = np.random.default_rng(seed)
    c, t = users(rng, (n_exp, n_users)), users(rng, (n_exp, n_users))
    _, _, p_delta = stats.ratio_z(c["clicks"], c["impressions"], t["clicks"], t["impressions"])
    _, _, p_naive = stats.ratio_z(c["clicks"], c["impressions"], t["clicks"], t["impressions"], naive=True)
    p_welch = stats.welch_p(c["clicks"], t["clicks"])
    return {"experiments": n_exp, "users_per_arm": n_users, "aa_fpr": float((p_delta < ALPHA).mean()),
            "aa_fpr_naive_variance": float((p_naive < ALPHA).mean()),
            "aa_fpr_welch_clicks_per_user": float((p_welch < ALPHA).mean())}


def _cumulative_ratio(clicks: np.ndarray, imps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CTR and its delta-method variance after each look; inputs (exp, looks, users per look)."""
    n = np.cumsum(np.full(clicks.shape[:2], clicks.shape[2]), axis=1)
    s = {k: np.cumsum(v.sum(-1), axis=1) for k, v in (("y", clicks), ("x", imps), ("yy", clicks**2),
                                                      ("xx", imps**2), ("xy", clicks * imps))}
    mx, my = s["x"] / n, s["y"] / n
    vx = (s["xx"] - n * mx**2) / (n - 1)
    vy = (s["yy"] - n * my**2) / (n - 1)
    cxy = (s["xy"] - n * mx * my) / (n - 1)
    var = (vy / mx**2 - 2 * my * cxy / mx**3 + my**2 * vx / mx**4) / n
    return my / mx, var


def peeking_study(n_exp: int = 1000, looks: int = 20, users_per_look: int = 100, seed: int = 2,
                  lift: float = 0.0) -> dict:
    """Daily looks at an experiment: stop at the first significant look, naive vs mSPRT."""
    rng = np.random.default_rng(seed)
    c, t = users(rng, (n_exp, looks, users_per_look)), users(rng, (n_exp, looks, users_per_look), lift)
    rc, vc = _cumulative_ratio(c["clicks"], c["impressions"])
    rt, vt = _cumulative_ratio(t["clicks"], t["impressions"])
    d, v = rt - rc, vc + vt
    p_fixed = 2 * stats.stats.norm.sf(np.abs(d) / np.sqrt(v))
    # tau: the effect size the design is built to find, the final look's 80 %-power MDE (2.8 SE)
    tau = 2.8 * np.sqrt(v[:, -1:]).mean()
    p_seq = sequential.always_valid_p(d, v, tau)
    lo, hi = sequential.confidence_sequence(d, v, tau, ALPHA)
    true_diff = 0.0 if lift == 0 else None
    out = {"experiments": n_exp, "looks": looks, "users_per_arm_per_look": users_per_look, "tau": float(tau),
           "peeking_fpr_naive" if lift == 0 else "peeking_power_naive": float((p_fixed < ALPHA).any(1).mean()),
           "peeking_fpr_sequential" if lift == 0 else "peeking_power_sequential":
               float((p_seq < ALPHA).any(1).mean()),
           "fixed_horizon_rate_at_last_look": float((p_fixed[:, -1] < ALPHA).mean())}
    if true_diff is not None:
        out["confidence_sequence_miss_rate"] = float(((lo > true_diff) | (hi < true_diff)).any(1).mean())
    return out


def power_study(p_c: float = 0.10, p_t: float = 0.12, target: float = 0.8, n_exp: int = 1000,
                seed: int = 3) -> dict:
    """A known lift in a conversion rate: the calculator's power vs the share of experiments that detect it."""
    from statsmodels.stats.proportion import proportions_ztest

    n = int(np.ceil(stats.proportion_sample_size(p_c, p_t, target, ALPHA)))
    predicted = stats.proportion_power(p_c, p_t, n, ALPHA)
    rng = np.random.default_rng(seed)
    k_c, k_t = rng.binomial(n, p_c, n_exp), rng.binomial(n, p_t, n_exp)
    p = np.array([proportions_ztest([kt, kc], [n, n])[1] for kc, kt in zip(k_c, k_t, strict=True)])
    return {"experiments": n_exp, "p_control": p_c, "p_treatment": p_t, "users_per_arm": n,
            "power_predicted": float(predicted), "power_observed": float((p < ALPHA).mean())}


def welch_power_study(lift: float = 0.15, n_users: int = 2000, n_exp: int = 1000, seed: int = 4) -> dict:
    """The same for clicks per user (Welch), with the calculator fed the pooled per-user sd."""
    rng = np.random.default_rng(seed)
    c, t = users(rng, (n_exp, n_users)), users(rng, (n_exp, n_users), lift)
    # the truth: E[clicks] = E[impressions] E[q] = (1 + 5 E[a]) x 2/30 = 11 x 2/30, times (1 + lift)
    true_diff = 11 * 2 / 30 * lift
    sd = np.sqrt((c["clicks"].var() + t["clicks"].var()) / 2)  # over all 2 x 10^6 simulated users
    predicted = stats.power(true_diff, sd, n_users, ALPHA)
    observed = (stats.welch_p(c["clicks"], t["clicks"]) < ALPHA).mean()
    return {"lift": lift, "users_per_arm": n_users, "power_predicted": predicted, "power_observed": float(observed)}


def cuped_study(rho: float = 0.7, n_users: int = 2000, n_exp: int = 1000, seed: int = 5) -> dict:
    """Correlated pre-period data: the effect estimator's variance falls by (1 - rho^2)."""
    rng = np.random.default_rng(seed)
    shape = (n_exp, 2, n_users)
    x = rng.normal(size=shape)
    y = 10 + 2 * (rho * x + np.sqrt(1 - rho**2) * rng.normal(size=shape))
    y[:, 1] += 0.1  # a true lift, so unbiasedness is checked on a non-zero effect
    raw = y[:, 1].mean(-1) - y[:, 0].mean(-1)
    adjusted = []
    for i in range(n_exp):  # our cuped_adjust, the function the readout uses
        adj, _ = stats.cuped_adjust(y[i].ravel(), x[i].ravel())
        adj = adj.reshape(2, n_users)
        adjusted.append(adj[1].mean() - adj[0].mean())
    adjusted = np.array(adjusted)
    return {"rho": rho, "predicted_ratio": 1 - rho**2, "observed_ratio": float(adjusted.var() / raw.var()),
            "mean_raw": float(raw.mean()), "mean_cuped": float(adjusted.mean()), "true_lift": 0.1}


def delta_study(n_users: int = 5000, n_boot: int = 2000, seed: int = 6) -> dict:
    """One arm's CTR: delta-method variance vs a bootstrap over users vs the naive per-impression one."""
    rng = np.random.default_rng(seed)
    u = users(rng, (n_users,))
    _, var_delta = stats.ratio_and_variance(u["clicks"].astype(float), u["impressions"].astype(float))
    idx = rng.integers(0, n_users, (n_boot, n_users))
    boot = u["clicks"][idx].sum(1) / u["impressions"][idx].sum(1)
    return {"users": n_users, "var_delta": float(var_delta), "var_bootstrap": float(boot.var(ddof=1)),
            "var_naive": float(stats.naive_ratio_variance(u["clicks"], u["impressions"]))}


def srm_study(n: int = 200_000, n_exp: int = 1000, seed: int = 7) -> dict:
    """The SRM gate: an injected 50.5 / 49.5 split at n = 200k, and how often a true 50/50 trips it."""
    injected = stats.srm({"control": int(n * 0.505), "treatment": n - int(n * 0.505)},
                         {"control": 0.5, "treatment": 0.5})
    rng = np.random.default_rng(seed)
    k = rng.binomial(n, 0.5, n_exp)
    flags = [stats.srm({"control": int(a), "treatment": int(n - a)}, {"control": 0.5, "treatment": 0.5}).blocked
             for a in k]
    return {"n": n, "injected_p": injected.p, "injected_blocked": injected.blocked,
            "true_5050_block_rate": float(np.mean(flags))}


def run_all() -> dict:
    t0 = time.time()
    aa, peek, pw = aa_study(), peeking_study(), power_study()
    out = {"aa_fpr": aa["aa_fpr"], "peeking_fpr_naive": peek["peeking_fpr_naive"],
           "peeking_fpr_sequential": peek["peeking_fpr_sequential"], "power_predicted": pw["power_predicted"],
           "power_observed": pw["power_observed"],
           "studies": {"aa": aa, "peeking": peek, "peeking_with_lift": peeking_study(lift=0.15, seed=8),
                       "power_z": pw, "power_welch": welch_power_study(), "cuped": cuped_study(),
                       "delta": delta_study(), "srm": srm_study()}}
    out["seconds"] = round(time.time() - t0, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    from minirec.settings import get_settings

    p = argparse.ArgumentParser(prog="python -m minirec.ab validate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=get_settings().artifacts_path / "ab" / "validation.json")
    a = p.parse_args(argv)
    out = run_all()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2))
    for k in ("aa_fpr", "peeking_fpr_naive", "peeking_fpr_sequential", "power_predicted", "power_observed"):
        print(f"{k:24s} {out[k]:.3f}")
    print(f"wrote {a.out} ({out['seconds']} s)")
    return 0
