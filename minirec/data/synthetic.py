"""Seeded synthetic interactions with the MovieLens schema, for scale tests.

Model of the data (all sizes configurable):
- items have a power-law popularity: weight(rank r) ∝ r^(-alpha), ranks shuffled;
- each item belongs to one of C latent taste clusters (its genre);
- each user belongs to one cluster and draws a share `affinity` of their
  interactions from their cluster's items (by popularity), the rest from the
  whole catalogue (by popularity);
- activity per user is geometric-ish (a few heavy users, many light ones);
- timestamps are uniform over `days` days starting at `start`.

Users are generated in chunks so 1M users × 100k items streams to parquet in
bounded memory (about 200 MB per 1M-row chunk).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from minirec.data.schema import INTERACTIONS, ITEMS, USERS, table_paths

GENRES = ["Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
          "Thriller", "War", "Western"]
OCCUPATIONS = ["student", "engineer", "educator", "programmer", "writer", "artist", "other",
               "administrator", "librarian", "scientist"]


@dataclass(frozen=True)
class SyntheticConfig:
    n_users: int = 10_000
    n_items: int = 2_000
    mean_interactions: float = 20.0  # per user
    n_clusters: int = 18  # one per genre
    alpha: float = 1.0  # popularity power-law exponent
    affinity: float = 0.7  # share of a user's events drawn from their own cluster
    days: int = 210
    start: str = "2024-01-01"
    seed: int = 0
    chunk_users: int = 50_000


def _cdf(weights: np.ndarray) -> np.ndarray:
    c = np.cumsum(weights, dtype=np.float64)
    return c / c[-1]


def generate(cfg: SyntheticConfig, out_dir: Path) -> dict[str, int]:
    """Write users/items/interactions parquet under `out_dir`; returns row counts."""
    rng = np.random.default_rng(cfg.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = table_paths(out_dir)
    n_clusters = min(cfg.n_clusters, len(GENRES))

    # --- items: popularity weight and cluster ---
    ranks = rng.permutation(cfg.n_items) + 1
    pop = ranks.astype(np.float64) ** (-cfg.alpha)  # (M,)
    item_cluster = rng.integers(0, n_clusters, cfg.n_items)  # (M,)
    item_ids = np.arange(1, cfg.n_items + 1, dtype=np.int64)
    items = pd.DataFrame(
        {
            "item_id": item_ids,
            "title": [f"Synthetic movie {i}" for i in item_ids],
            "year": rng.integers(1950, 2024, cfg.n_items).astype("int16"),
            "genres": [[GENRES[c]] for c in item_cluster],
        }
    )
    pq.write_table(pa.Table.from_pandas(items, schema=ITEMS, preserve_index=False), paths["items"])

    global_cdf = _cdf(pop)
    # per cluster: its member item indices and their popularity CDF
    members = [np.flatnonzero(item_cluster == c) for c in range(n_clusters)]
    cluster_cdf = [_cdf(pop[m]) if len(m) else None for m in members]

    start = pd.Timestamp(cfg.start, tz="UTC").value // 1_000  # microseconds
    span_us = cfg.days * 86_400 * 1_000_000
    n_rows = 0
    user_writer = pq.ParquetWriter(paths["users"], USERS)
    inter_writer = pq.ParquetWriter(paths["interactions"], INTERACTIONS)
    try:
        for lo in range(0, cfg.n_users, cfg.chunk_users):
            hi = min(lo + cfg.chunk_users, cfg.n_users)
            n = hi - lo
            uid = np.arange(lo + 1, hi + 1, dtype=np.int64)
            ucluster = rng.integers(0, n_clusters, n)
            users = pd.DataFrame(
                {
                    "user_id": uid,
                    "age": rng.integers(10, 75, n).astype("int16"),
                    "gender": np.where(rng.random(n) < 0.5, "M", "F"),
                    "occupation": rng.choice(OCCUPATIONS, n),
                    "zip_code": [f"{z:05d}" for z in rng.integers(0, 100_000, n)],
                }
            )
            user_writer.write_table(pa.Table.from_pandas(users, schema=USERS, preserve_index=False))

            counts = 1 + rng.geometric(1.0 / cfg.mean_interactions, n)  # (n,) >= 2
            ev_user = np.repeat(np.arange(n), counts)  # (E,) local user index
            ev_cluster = ucluster[ev_user]
            own = rng.random(len(ev_user)) < cfg.affinity
            ev_item = np.searchsorted(global_cdf, rng.random(len(ev_user)))  # global draw
            for c in range(n_clusters):
                sel = own & (ev_cluster == c)
                if cluster_cdf[c] is not None and sel.any():
                    ev_item[sel] = members[c][np.searchsorted(cluster_cdf[c], rng.random(sel.sum()))]
            ev_item = np.minimum(ev_item, cfg.n_items - 1)
            frame = pd.DataFrame(
                {
                    "user_id": uid[ev_user],
                    "item_id": item_ids[ev_item],
                    "rating": rng.integers(1, 6, len(ev_user)).astype("float32"),
                    "event_timestamp": pd.to_datetime(start + rng.integers(0, span_us, len(ev_user)), unit="us", utc=True),
                }
            ).drop_duplicates(["user_id", "item_id"])
            inter_writer.write_table(pa.Table.from_pandas(frame, schema=INTERACTIONS, preserve_index=False))
            n_rows += len(frame)
    finally:
        user_writer.close()
        inter_writer.close()
    return {"users": cfg.n_users, "items": cfg.n_items, "interactions": n_rows}
