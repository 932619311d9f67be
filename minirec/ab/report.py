"""Render a readout (readout.py's dict) as artifacts/ab/<experiment>/report.{json,md,png}.

    report.json  the dict itself (the explorer page reads it)
    report.md    arms, effects, SRM, CUPED, sequential and power in tables, the decision first
    report.png   top: per-arm CTR over the looks with 95 % intervals; bottom: the CTR effect with its
                 fixed-horizon interval and the always-valid confidence sequence
"""

from __future__ import annotations

import json
from pathlib import Path


def _f(x, fmt: str = ".4f") -> str:
    return "—" if x is None else format(x, fmt)


def markdown(r: dict, command: str) -> str:
    d = r["decision"]
    head = (f"**BLOCKED**: {d['reason']}." if d["blocked"] else
            f"**Decision**: {d['reason']}" + (f"; winner **{d['winner']}**." if d["winner"] else "."))
    lines = [f"# A/B readout: {r['experiment']}", "", head, "",
             f"`{command}`, generated {r['generated_at']}; first exposure {r['window']['first_exposure']}, "
             f"last {r['window']['last_exposure']}; alpha = {r['alpha']}.", "",
             "| arm | users | lists | items shown | clicks | CTR | clicks / user | conversion |",
             "|---|---|---|---|---|---|---|---|"]
    for v, a in r["arms"].items():
        lines.append(f"| {v} | {a['users']} | {a['lists']} | {a['impressions']} | {a['clicks']} | {_f(a['ctr'])} | "
                     f"{_f(a['clicks_per_user'], '.3f')} | {_f(a['conversion'], '.3f')} |")
    s = r["srm"]
    lines += ["", f"Sample ratio: observed {s['observed']}, expected {({k: round(v, 1) for k, v in s['expected'].items()})}, "
              f"chi-square {s['chi2']:.2f}, **p = {s['p']:.3g}** ({'fails' if s['blocked'] else 'passes'} the "
              f"p < {s['threshold']} gate).", ""]
    for comp in r["comparisons"]:
        lines += [f"## {comp['arm']} vs {comp['vs']}", "",
                  "| metric | method | control | treatment | diff | rel | 95 % CI | p |", "|---|---|---|---|---|---|---|---|"]
        for key in ("ctr", "clicks_per_user", "clicks_per_user_cuped", "conversion"):
            e = comp[key]
            lines.append(f"| {key} | {e['method']} | {_f(e['control'])} | {_f(e['treatment'])} | {e['diff']:+.4f} | "
                         f"{e['rel']:+.1%} | [{e['ci'][0]:+.4f}, {e['ci'][1]:+.4f}] | {e['p']:.3g} |")
        sq = comp["sequential"]
        if sq["looks"]:
            cs = sq["confidence_sequence"]
            lines += ["", f"Sequential (mSPRT, tau = {sq['tau']:.4f}, {len(sq['looks'])} looks): always-valid "
                      f"p = {sq['p_always_valid']:.3g}, confidence sequence [{cs[0]:+.4f}, {cs[1]:+.4f}] at the "
                      "last look; safe to stop at any look where p <= alpha."]
    lines += ["", f"CUPED on pre-period activity ({r['cuped']['covariate']}): rho = {r['cuped']['rho']:.3f}, "
              f"variance ratio {r['cuped_variance_ratio']:.3f} (= 1 - rho^2)."]
    if r["power"]:
        p = r["power"]
        lines += ["", f"Power: with {p['users_per_arm']} users per arm the CTR MDE at 80 % power is "
                  f"{_f(p['mde_abs_at_80_power'])} (absolute); a 5 % relative lift needs "
                  f"{_f(p['users_per_arm_for_5pct_lift'], ',.0f')} users per arm."]
    dg = r["diagnostics"]
    lines += ["", f"Diagnostics: {dg['users_in_two_arms_dropped']} users exposed to two arms (dropped), "
              f"{dg['lists_served_from_another_arm']} lists served from another arm than assigned, "
              f"{dg['exposed_users_without_impressions']} exposed users without impressions.", "",
              "![effect over time](report.png)", ""]
    return "\n".join(lines)


def plot(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6.5), sharex=True)
    looks = (r.get("sequential") or {}).get("looks") or []
    if looks:
        x = list(range(1, len(looks) + 1))
        for arm in looks[-1]["ctr"]:
            ctr = [lk["ctr"][arm] for lk in looks]
            se = [lk["var"][arm] ** 0.5 for lk in looks]
            line, = top.plot(x, ctr, marker="o", label=arm)
            top.fill_between(x, [c - 1.96 * s for c, s in zip(ctr, se, strict=True)],
                             [c + 1.96 * s for c, s in zip(ctr, se, strict=True)], color=line.get_color(), alpha=0.2)
        diff = [lk["diff"] for lk in looks]
        bottom.plot(x, diff, marker="o", color="black", label="CTR effect (treatment − control)")
        bottom.fill_between(x, [lk["ci"][0] for lk in looks], [lk["ci"][1] for lk in looks], alpha=0.35,
                            label="95 % fixed-horizon interval")
        bottom.fill_between(x, [lk["confidence_sequence"][0] for lk in looks],
                            [lk["confidence_sequence"][1] for lk in looks], alpha=0.15, color="tab:red",
                            label="95 % confidence sequence (peeking-safe)")
        bottom.axhline(0, color="grey", linewidth=0.8)
    else:
        top.text(0.5, 0.5, "readout blocked: " + r["decision"]["reason"][:80], ha="center", transform=top.transAxes,
                 wrap=True)
    top.set_ylabel("CTR (cumulative)")
    top.set_title(f"{r['experiment']}: SRM p = {r['srm_p']:.3g}" + (" (BLOCKED)" if r["decision"]["blocked"] else ""))
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    bottom.set_xlabel("look (equal steps from the first exposure to the last event)")
    bottom.set_ylabel("CTR difference")
    bottom.legend(fontsize=7)
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(r: dict, out_dir: Path, command: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "report.json", out_dir / "report.md", out_dir / "report.png"]
    paths[0].write_text(json.dumps({**r, "command": command}, indent=2, default=str))
    paths[1].write_text(markdown(r, command))
    plot(r, paths[2])
    return paths
