"""What is compared: the columns of each group, the reference, and a window turned into frames.

    lake impressions + interactions (one window) + user features looked up per impression
        --current_frames--> Frames(features, scores, impressions, clicks, genres)

Groups and what each row is:
    features     one row per impression: the served user's features (the training reference:
                 reference/features.parquet, one row per training label)
    scores       one row per impression: top-1 and mean top-10 score of the served list, and why a
                 popularity list was served (reference/scores.parquet holds one row per user; it is
                 attached to each training label of that user, fallback "none": the model's answers)
    (features and scores share one frame, `served`, so they are one Evidently Report)
    outcomes     clicks, compared with a *baseline* of the first served windows of the same model
                 (the training data has no clicks): clicks per impression (per impression), click
                 source list|organic and the clicked item's popularity percentile (per click), the
                 clicked items' genre tags (per tag)

A user the online store does not know (a new user) gets "unknown" categories and 0 counts:
that is what the store says about them, and it is what makes a new-user influx visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

UNKNOWN = "unknown"
FEATURE_CAT = ["age_bucket", "gender", "occupation"]
FEATURE_NUM = ["u_cnt_7d", "u_cnt_30d", "u_cnt_all", "u_cnt_1h", "u_cnt_24h", "u_mean_rating_30d",
               "n_last_items"]
SCORE_NUM = ["top1_score", "top10_mean_score"]
SCORE_CAT = ["fallback"]
# outcome frames: name -> (categorical columns, numeric columns)
OUTCOME_FRAMES = {"impressions": (["n_clicks"], []), "clicks": (["source"], ["item_pop_pct"]),
                  "genres": (["genre"], [])}
CLICK_BINS = ("0", "1", "2", "3+")  # n_clicks per impression, binned so a test has few categories


@dataclass
class Reference:
    """The training reference (export_reference) plus what the outcome columns need from the catalogue."""

    served: pd.DataFrame  # one row per training label: FEATURE_* + SCORE_* (the user's reference scores)
    item_pop_pct: dict[int, float]  # item -> popularity percentile among catalogue items in the labels
    item_genres: dict[int, tuple[str, ...]]
    source: str  # where it came from (a folder, with the training run id when known)

    @classmethod
    def load(cls, ref_dir: Path, items_table: Path) -> Reference:
        ref_dir = Path(ref_dir)
        missing = [n for n in ("features.parquet", "scores.parquet") if not (ref_dir / n).exists()]
        if missing:
            raise FileNotFoundError(f"no drift reference in {ref_dir} ({', '.join(missing)} missing): "
                                    "run `make train` (its export_reference step writes it)")
        feats = pd.read_parquet(ref_dir / "features.parquet")
        scores = pd.read_parquet(ref_dir / "scores.parquet")
        items = pd.read_parquet(items_table, columns=["item_id", "genres"])
        run_id = (ref_dir.parent / "RUN_ID").read_text().strip() if (ref_dir.parent / "RUN_ID").exists() else None
        return cls(served=reference_served(feats, scores),
                   item_pop_pct=popularity_percentiles(feats["item_id"], items["item_id"]),
                   item_genres={int(i): tuple(g) for i, g in zip(items["item_id"], items["genres"], strict=True)},
                   source=f"{ref_dir}" + (f" (run {run_id})" if run_id else ""))


def popularity_percentiles(label_items: pd.Series, catalogue: pd.Series) -> dict[int, float]:
    """item -> share of catalogue items with fewer labels (0 = least popular, ~1 = most popular)."""
    counts = label_items.value_counts().reindex(catalogue.values, fill_value=0)
    pct = counts.rank(method="min").sub(1).div(max(len(counts) - 1, 1))
    return {int(i): float(p) for i, p in pct.items()}


def _category(v) -> str:
    """One categorical value as text: missing -> "unknown"; 2 and 2.0 -> "2" (a column with a missing
    value comes back from Feast or pandas as float, and "2.0" must not be a new category)."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return UNKNOWN
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def feature_columns(df: pd.DataFrame) -> pd.DataFrame:
    """User-feature rows in the compared form: categoricals as strings, unknown users filled."""
    out = pd.DataFrame(index=df.index)
    for c in FEATURE_CAT:
        col = df[c] if c in df else pd.Series(None, index=df.index, dtype=object)
        out[c] = col.map(_category)
    for c in FEATURE_NUM:
        if c == "n_last_items" and c not in df and "last_items" in df:
            col = df["last_items"].map(lambda v: 0 if v is None or (isinstance(v, float) and np.isnan(v)) else len(v))
        else:
            col = df[c] if c in df else pd.Series(np.nan, index=df.index)
        out[c] = pd.to_numeric(col, errors="coerce").fillna(0.0).astype(float)
    return out.reset_index(drop=True)


def reference_served(feats: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Training labels with their user's reference scores attached, so features and scores are
    weighted the same way as served traffic (one row per event, active users more often)."""
    by_user = scores.drop_duplicates("user_id").set_index("user_id")[SCORE_NUM].astype(float)
    out = feature_columns(feats)
    for c in SCORE_NUM:
        out[c] = feats["user_id"].map(by_user[c]).values
    out["fallback"] = "none"  # the reference is the model's own answers
    return out


def score_columns(impressions: pd.DataFrame) -> pd.DataFrame:
    """Per impression: the top-1 score, the mean of the top 10, and the fallback reason ("none")."""
    top1 = impressions["scores"].map(lambda s: float(s[0]) if len(s) else np.nan)
    top10 = impressions["scores"].map(lambda s: float(np.mean(s[:10])) if len(s) else np.nan)
    fb = impressions["fallback"].map(lambda v: "none" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    return pd.DataFrame({"top1_score": top1.values, "top10_mean_score": top10.values, "fallback": fb.values})


def click_bin(n: int) -> str:
    return CLICK_BINS[min(int(n), len(CLICK_BINS) - 1)]


def outcome_frames(impressions: pd.DataFrame, clicks: pd.DataFrame, ref: Reference) -> dict[str, pd.DataFrame]:
    """The three outcome frames of a window (see the module docstring)."""
    list_clicks = clicks[clicks["request_id"].notna()]
    per_request = list_clicks.groupby("request_id").size()
    n = impressions["request_id"].map(per_request).fillna(0).astype(int)
    organic = clicks["request_id"].isna()
    items = clicks["item_id"].astype(int)
    clicked = pd.DataFrame({"source": np.where(organic, "organic", "list"),
                            "item_pop_pct": items.map(lambda i: ref.item_pop_pct.get(i, 0.0)).astype(float).values})
    tags = [g for i in items for g in ref.item_genres.get(int(i), (UNKNOWN,))]
    return {"impressions": pd.DataFrame({"n_clicks": n.map(click_bin).values}),
            "clicks": clicked, "genres": pd.DataFrame({"genre": pd.Series(tags, dtype=object)})}


@dataclass
class Frames:
    served: pd.DataFrame  # FEATURE_* + SCORE_*, one row per impression
    outcomes: dict[str, pd.DataFrame]
    n_impressions: int
    n_clicks: int


def current_frames(impressions: pd.DataFrame, clicks: pd.DataFrame, user_features: pd.DataFrame,
                   ref: Reference) -> Frames:
    """A window's frames. `user_features` is aligned with `impressions` (row i = impression i's user);
    `clicks` are the window's click interactions (request_id None for a click outside any list)."""
    if len(user_features) != len(impressions):
        raise ValueError(f"user_features has {len(user_features)} rows for {len(impressions)} impressions")
    served = pd.concat([feature_columns(user_features.reset_index(drop=True)),
                        score_columns(impressions.reset_index(drop=True))], axis=1)
    return Frames(served=served, outcomes=outcome_frames(impressions, clicks, ref),
                  n_impressions=len(impressions), n_clicks=len(clicks))
