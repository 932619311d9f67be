"""The experiment readout: per-user table -> SRM gate -> effects, CUPED, sequential looks, power.

    user table (data.py) --users per arm vs the configured weights--> SRM chi-square
        p < 0.001: BLOCKED (counts reported, every effect withheld: the split itself is broken)
        else, each non-control arm vs the control:
            ctr                   sum clicks / sum items shown, delta method, users as the unit (primary)
            clicks_per_user       Welch's t-test
            clicks_per_user_cuped the same after CUPED on pre-period activity
            conversion            share of users with a click, two-proportion z-test
        looks (equal time steps): CTR effect with its fixed-horizon interval, the mSPRT
                                  always-valid p-value and confidence sequence
        power: CTR MDE at this sample (80 % power), users per arm for a 5 % relative lift

`readout()` returns the JSON document `make ab-report` writes (report.py renders md and png).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from minirec.ab import sequential, stats
from minirec.ab.config import Experiment
from minirec.ab.data import ExperimentEvents, ReadoutError, look_times, user_table


def arm_summary(t: pd.DataFrame) -> dict:
    imps, clicks = int(t["impressions"].sum()), int(t["clicks"].sum())
    return {"users": int(len(t)), "impressions": imps, "clicks": clicks, "lists": int(t["lists"].sum()),
            "ctr": clicks / imps if imps else None, "clicks_per_user": float(t["clicks"].mean()) if len(t) else None,
            "conversion": float(t["converted"].mean()) if len(t) else None,
            "pre_activity_per_user": float(t["pre"].mean()) if len(t) else None}


def compare(c: pd.DataFrame, t: pd.DataFrame, alpha: float) -> tuple[dict, stats.Cuped]:
    ctr = stats.ratio_effect(c["clicks"], c["impressions"], t["clicks"], t["impressions"], alpha)
    cpu = stats.welch(c["clicks"].to_numpy(float), t["clicks"].to_numpy(float), alpha, "clicks_per_user")
    cuped, info = stats.cuped_effect(c["clicks"].to_numpy(float), c["pre"].to_numpy(float),
                                     t["clicks"].to_numpy(float), t["pre"].to_numpy(float), alpha,
                                     "clicks_per_user")
    conv = stats.two_proportion(int(c["converted"].sum()), len(c), int(t["converted"].sum()), len(t), alpha)
    return {"ctr": ctr.to_dict(), "clicks_per_user": cpu.to_dict(), "clicks_per_user_cuped": cuped.to_dict(),
            "conversion": conv.to_dict()}, info


def sequential_looks(ev: ExperimentEvents, control: str, arm: str, looks: int, alpha: float) -> dict:
    rows = []
    for until in look_times(ev, looks):
        u = user_table(ev, until)
        c, t = u[u["arm"] == control], u[u["arm"] == arm]
        if len(c) < 2 or len(t) < 2 or c["impressions"].sum() == 0 or t["impressions"].sum() == 0:
            continue
        rc, vc = stats.ratio_and_variance(c["clicks"].to_numpy(float), c["impressions"].to_numpy(float))
        rt, vt = stats.ratio_and_variance(t["clicks"].to_numpy(float), t["impressions"].to_numpy(float))
        rows.append({"until": until.isoformat(), "users": {control: len(c), arm: len(t)},
                     "ctr": {control: float(rc), arm: float(rt)}, "var": {control: float(vc), arm: float(vt)},
                     "diff": float(rt - rc), "v": float(vc + vt)})
    if not rows:
        return {"looks": [], "tau": None}
    d, v = np.array([r["diff"] for r in rows]), np.array([r["v"] for r in rows])
    tau = 2.8 * float(np.sqrt(v[-1]))  # mixing scale: the final sample's 80 %-power MDE (see sequential.py)
    p_seq = sequential.always_valid_p(d, v, tau)
    lo, hi = sequential.confidence_sequence(d, v, tau, alpha)
    q = stats.stats.norm.ppf(1 - alpha / 2)
    for i, r in enumerate(rows):
        se = float(np.sqrt(r["v"]))
        r.update(ci=[r["diff"] - q * se, r["diff"] + q * se], p_fixed=float(2 * stats.stats.norm.sf(abs(d[i]) / se)),
                 p_always_valid=float(p_seq[i]), confidence_sequence=[float(lo[i]), float(hi[i])])
    return {"looks": rows, "tau": tau, "p_always_valid": float(p_seq[-1]),
            "confidence_sequence": [float(lo[-1]), float(hi[-1])]}


def readout(ev: ExperimentEvents, spec: Experiment, alpha: float = 0.05, looks: int = 10) -> dict:
    """The whole report for one experiment (see the module doc); ReadoutError when there is no data."""
    table = user_table(ev)
    unknown = sorted(set(table["arm"]) - set(spec.variants))
    if unknown:
        raise ReadoutError(f"exposures name variants {unknown} that {spec.name!r} does not define "
                           f"({list(spec.variants)}): the experiments file changed during the run")
    control = spec.control
    per_arm = {v: arm_summary(table[table["arm"] == v]) for v in spec.variants}
    gate = stats.srm({v: a["users"] for v, a in per_arm.items()}, spec.variants)
    out: dict = {"experiment": spec.name, "generated_at": datetime.now(UTC).isoformat(), "alpha": alpha,
                 "control": control, "arms": per_arm, "srm_p": gate.p,
                 "srm": {"chi2": gate.chi2, "p": gate.p, "blocked": gate.blocked, "threshold": stats.SRM_ALPHA,
                         "observed": gate.observed, "expected": gate.expected},
                 "window": {"first_exposure": table["t0"].min().isoformat(), "last_exposure": table["t0"].max().isoformat()},
                 "diagnostics": {"users_in_two_arms_dropped": ev.conflicting_users,
                                 "lists_served_from_another_arm": int(table["mismatched_lists"].sum()),
                                 "exposed_users_without_impressions": int((table["impressions"] == 0).sum())}}
    c = table[table["arm"] == control]
    _, info = stats.cuped_adjust(table["clicks"].to_numpy(float), table["pre"].to_numpy(float))
    out["cuped_variance_ratio"] = info.variance_ratio
    out["cuped"] = {"covariate": "interactions before the first exposure", "theta": info.theta, "rho": info.rho}
    if gate.blocked:
        out.update(effect=None, comparisons=[], sequential=None, power=None,
                   decision={"blocked": True, "winner": None,
                             "reason": f"sample ratio mismatch: users per arm {gate.observed} against weights "
                                       f"{dict(spec.variants)} has p = {gate.p:.2g} < {stats.SRM_ALPHA}; the "
                                       "assignment or the logging is broken, so no effect is reported"})
        return out
    if len(c) < 2 or any(per_arm[v]["users"] < 2 for v in spec.variants):
        raise ReadoutError(f"{spec.name}: fewer than 2 exposed users in an arm ({ {v: a['users'] for v, a in per_arm.items()} }); "
                           "let the simulator run longer")
    comparisons = []
    for arm in list(spec.variants)[1:]:
        effects, _ = compare(c, table[table["arm"] == arm], alpha)
        comparisons.append({"arm": arm, "vs": control, **effects,
                            "sequential": sequential_looks(ev, control, arm, looks, alpha)})
    primary = comparisons[0]["ctr"]
    out["effect"] = primary
    out["comparisons"] = comparisons
    out["sequential"] = comparisons[0]["sequential"]
    out["power"] = power_block(c, per_arm[control], alpha)
    significant = primary["p"] < alpha
    better = comparisons[0]["arm"] if primary["diff"] > 0 else control
    out["decision"] = {"blocked": False, "winner": better if significant else None,
                       "reason": (f"{better} has the higher CTR ({primary['diff']:+.4f}, p = {primary['p']:.2g})"
                                  if significant else f"no significant CTR difference (p = {primary['p']:.2g})")}
    return out


def power_block(c: pd.DataFrame, arm: dict, alpha: float) -> dict:
    """CTR's MDE at this sample and the sample for a 5 % relative lift, from the control's per-user spread.

    The per-user sd of the linearised CTR (clicks - ctr x impressions) / mean impressions is the
    delta method's sd, so the calculator's answers are in CTR units."""
    imps, clicks = c["impressions"].to_numpy(float), c["clicks"].to_numpy(float)
    ctr = arm["ctr"] or 0.0
    sd = float(np.std(clicks - ctr * imps, ddof=1) / max(imps.mean(), 1e-12))
    n = len(c)
    return {"per_user_sd_ctr": sd, "users_per_arm": n,
            "mde_abs_at_80_power": stats.mde(sd, n, 0.8, alpha) if sd > 0 else None,
            "users_per_arm_for_5pct_lift": stats.sample_size(0.05 * ctr, sd, 0.8, alpha) if sd > 0 and ctr else None}
