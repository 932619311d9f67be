"""Step 6: the serving bundle: item vectors, the FAISS HNSW index and its measured recall, the ranker."""

from __future__ import annotations

import shutil
from typing import Any

import numpy as np

from minirec.pipeline.context import (
    HOLDOUT,
    RunContext,
    catalogue,
    frames,
    load_run_tables,
    read_json,
    write_json,
)

# The serving snapshot: user and item features as of the start of the held-out
# (test) period. Serving begins there (the simulator replays that period), so
# the index, the online store and the seen-sets never hold the future, and the
# offline test score measures the model exactly as it is served.
RELEASE_FRAMES = ("users_test", "items_test")


def build_index(ctx: RunContext) -> dict[str, Any]:
    """Item vectors as of the release cut -> FAISS HNSW; recall and latency against exact search; the bundle."""
    import faiss

    from minirec.features.store import ITEM_SERVICE, USER_SERVICE
    from minirec.model.two_tower import ITEM_FEATURES, USER_FEATURES, item_vectors, user_vectors
    from minirec.train.ann import build_exact, build_hnsw, measure
    from minirec.train.registry import load_dir

    read_json(ctx.run_dir / "gate.json")
    tables = load_run_tables(ctx)
    cat = catalogue(tables)
    model, cfg = load_dir(ctx.run_dir / "model")
    users_at, items_at = frames(ctx, *RELEASE_FRAMES)
    iv = item_vectors(model, items_at, cat.item_ids)  # (M, d+1)
    queries = user_vectors(model, users_at, users_at["user_id"].values)  # (U, d+1)
    ann, exact = build_hnsw(iv), build_exact(iv)
    stats = measure(ann, exact, queries, k=100)
    bundle = ctx.run_dir / "bundle"
    if bundle.exists():
        shutil.rmtree(bundle)
    bundle.mkdir(parents=True)
    shutil.copy2(ctx.run_dir / "model" / "model.pt", bundle / "model.pt")
    write_json(bundle / "config.json", cfg)
    np.save(bundle / "item_vectors.npy", iv)
    np.save(bundle / "item_embeddings.npy", np.ascontiguousarray(iv[:, :-1]))
    np.save(bundle / "item_ids.npy", cat.item_ids.astype(np.int64))
    faiss.write_index(ann, str(bundle / "index.faiss"))
    if (ctx.run_dir / HOLDOUT / "model.pt").exists():  # the towers the validation numbers came from (gate)
        shutil.copytree(ctx.run_dir / HOLDOUT, bundle / "holdout")
    if (ctx.run_dir / "ranker").exists():  # the ranking stage (train_ranker), in the same bundle
        shutil.copytree(ctx.run_dir / "ranker", bundle / "ranker")
        items_at.to_parquet(bundle / "ranker" / "items.parquet", index=False)  # its item features at the cut
    write_json(bundle / "features.json", {"user_service": USER_SERVICE, "item_service": ITEM_SERVICE,
                                           "user_features": USER_FEATURES, "item_features": ITEM_FEATURES})
    write_json(ctx.run_dir / "ann.json", stats)
    return stats
