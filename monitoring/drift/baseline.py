"""The outcome baseline: the first served windows of a model, pooled (the training data has no clicks).

    run/drift/baseline/<frame>.parquet + meta.json {model_version, windows}

A window compared while the baseline is incomplete adds its outcome frames to
it (its outcome group is reported as skipped: "baseline not ready"). When the
impressions' model version changes (a retrain was promoted), the baseline
starts again for the new model, because CTR and the click mix belong to a model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from monitoring.drift.frames import OUTCOME_FRAMES


def pool_outcomes(frames: list[dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """Concatenate the outcome frames of several windows, frame by frame."""
    return {name: pd.concat([f[name] for f in frames], ignore_index=True) for name in OUTCOME_FRAMES}


class Baseline:
    def __init__(self, folder: Path, windows_needed: int):
        self.folder, self.windows_needed = Path(folder), windows_needed

    def meta(self) -> dict:
        p = self.folder / "meta.json"
        return json.loads(p.read_text()) if p.exists() else {"model_version": None, "windows": 0}

    def ready_for(self, model_version: str) -> dict[str, pd.DataFrame] | None:
        """The pooled baseline when it is complete for this model version, else None."""
        m = self.meta()
        if m["model_version"] != model_version or m["windows"] < self.windows_needed:
            return None
        return {name: pd.read_parquet(self.folder / f"{name}.parquet") for name in OUTCOME_FRAMES}

    def add(self, model_version: str, outcomes: dict[str, pd.DataFrame]) -> dict:
        """Add one window's outcome frames (restarting when the model version changed); returns meta."""
        m = self.meta()
        self.folder.mkdir(parents=True, exist_ok=True)
        if m["model_version"] != model_version:
            m = {"model_version": model_version, "windows": 0}
            old = None
        else:
            old = {name: pd.read_parquet(self.folder / f"{name}.parquet") for name in OUTCOME_FRAMES}
        pooled = pool_outcomes([old, outcomes]) if old else outcomes
        for name, df in pooled.items():
            tmp = self.folder / f".{name}.parquet.tmp"
            df.to_parquet(tmp, index=False)
            tmp.replace(self.folder / f"{name}.parquet")
        m["windows"] += 1
        (self.folder / "meta.json").write_text(json.dumps(m))
        return m
