"""The synthetic generator: same schema, seeded, power-law popularity, taste clusters."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq

from minirec.data.schema import TABLES, table_paths
from minirec.data.synthetic import SyntheticConfig, generate

CFG = SyntheticConfig(n_users=3000, n_items=800, mean_interactions=15, chunk_users=1000, seed=7)


def _gen(tmp_path, cfg=CFG):
    out = tmp_path / "syn"
    counts = generate(cfg, out)
    return out, counts


def test_schema_matches_movielens_tables(tmp_path):
    out, counts = _gen(tmp_path)
    for name, path in table_paths(out).items():
        assert pq.read_schema(path).remove_metadata() == TABLES[name]
    assert counts["users"] == 3000 and counts["items"] == 800
    inter = pd.read_parquet(table_paths(out)["interactions"])
    assert len(inter) == counts["interactions"] > 3000 * 5
    assert not inter.duplicated(["user_id", "item_id"]).any()
    assert inter.user_id.between(1, 3000).all() and inter.item_id.between(1, 800).all()


def test_seeded_and_deterministic(tmp_path):
    a, _ = _gen(tmp_path / "a")
    b, _ = _gen(tmp_path / "b")
    pa_ = pd.read_parquet(table_paths(a)["interactions"])
    pb_ = pd.read_parquet(table_paths(b)["interactions"])
    pd.testing.assert_frame_equal(pa_, pb_)


def test_popularity_is_heavy_tailed(tmp_path):
    out, _ = _gen(tmp_path)
    inter = pd.read_parquet(table_paths(out)["interactions"])
    counts = inter.item_id.value_counts().sort_values(ascending=False)
    top_decile_share = counts.iloc[: len(counts) // 10].sum() / counts.sum()
    assert top_decile_share > 0.4  # uniform would give 0.1


def test_users_prefer_their_cluster(tmp_path):
    out, _ = _gen(tmp_path)
    inter = pd.read_parquet(table_paths(out)["interactions"])
    items = pd.read_parquet(table_paths(out)["items"])
    genre = items.set_index("item_id").genres.map(lambda g: g[0])
    inter["genre"] = inter.item_id.map(genre)
    # share of each user's events in their single most frequent genre
    top_share = inter.groupby("user_id").genre.agg(lambda g: g.value_counts(normalize=True).iloc[0])
    assert top_share.mean() > 0.5  # affinity 0.7 plus popularity noise; 18 uniform genres would give ~0.2
