"""Seconds per drift window against window size, and the share of it inside Evidently (`make bench-drift`).

    study window (1k impressions, monitoring.drift.study) --resampled to N rows--> impressions, clicks,
    user features --current_frames + compare (the live job's path: engine "report", DataDriftPreset
    Reports with widgets, and "stattest", the same verdicts without rendering)--> seconds

Sizes: 1k, 10k, 100k impressions per window (clicks and genre tags scale with them; the
reference is the MovieLens stand-in or DRIFT_REFERENCE_DIR). Writes artifacts/bench/drift.json
and drift.png. Frames are built outside Evidently; "evidently share" = time in Report.run (or
in the stat tests) / total.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("DO_NOT_TRACK", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def resample(w, n: int, seed: int = 0):
    """The window's impressions (with their features and clicks) drawn with replacement to n rows."""
    from monitoring.drift.study import Window

    rng = np.random.default_rng(seed)
    idx = rng.integers(len(w.impressions), size=n)
    imp = w.impressions.iloc[idx].reset_index(drop=True)
    imp["request_id"] = [f"{r}-{j}" for j, r in enumerate(imp["request_id"])]
    by_req = w.clicks.groupby("request_id")
    clicks = [g.assign(request_id=new) for old, new in zip(w.impressions["request_id"].iloc[idx], imp["request_id"],
                                                            strict=True) if old in by_req.groups
              for g in [by_req.get_group(old)]]
    clicks = pd.concat(clicks, ignore_index=True) if clicks else w.clicks.iloc[:0]
    return Window(imp, clicks, w.features.iloc[idx].reset_index(drop=True))


def main(argv: list[str] | None = None) -> int:
    from minirec.settings import get_settings

    s = get_settings()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    p.add_argument("--repeats", type=int, default=2, help="windows per size (the median is reported)")
    p.add_argument("--out", type=Path, default=s.artifacts_path / "bench")
    a = p.parse_args(argv)

    from monitoring.drift.compare import Methods, compare
    from monitoring.drift.reference import build_reference
    from monitoring.drift.study import Study

    data = s.data_path / "ml-100k"
    ref = s.drift_reference_path
    if not (ref / "features.parquet").exists():
        ref = build_reference(data, s.artifacts_path / "drift" / "stand_in_reference")
    study = Study(ref, data, window=1000)
    (base_w,), _ = study.windows("none", 1, stream=7)
    baseline = study.baseline(3)
    methods = Methods.from_settings(s)
    compare(study.frames(base_w), study.reference, baseline, methods, engine="stattest")  # warm: imports
    rows = []
    for n in a.sizes:
        for engine in ("report", "stattest"):
            runs = []
            for r in range(a.repeats):
                w = resample(base_w, n, seed=r)
                t0 = time.perf_counter()
                c = compare(study.frames(w), study.reference, baseline, methods, engine=engine)
                total = time.perf_counter() - t0
                runs.append((total, c.evidently_s))
            total, ev = (float(np.median([x[i] for x in runs])) for i in (0, 1))
            rows.append({"impressions": n, "engine": engine, "seconds": round(total, 3),
                         "evidently_seconds": round(ev, 3), "evidently_share": round(ev / total, 3)})
            print(json.dumps(rows[-1]), flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    result = {"rows": rows, "reference": study.reference.source, "repeats": a.repeats,
              "note": "frames + comparison of one window; 'report' is the live job's path"}
    (a.out / "drift.json").write_text(json.dumps(result, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for engine, style in (("report", "o-"), ("stattest", "s--")):
        pts = [r for r in rows if r["engine"] == engine]
        ax.loglog([r["impressions"] for r in pts], [r["seconds"] for r in pts], style, label=f"{engine}: total")
        ax.loglog([r["impressions"] for r in pts], [r["evidently_seconds"] for r in pts], style, alpha=0.4,
                  label=f"{engine}: inside Evidently")
    ax.set_xlabel("impressions per window")
    ax.set_ylabel("seconds per window")
    ax.set_title("drift window cost (2 shared cores)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.out / "drift.png", dpi=120)
    print(f"-> {a.out / 'drift.json'}, {a.out / 'drift.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
