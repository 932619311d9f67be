"""Thin wrapper over the Feast repo in `feature_repo/`: open, apply, read, materialise.

`feature_store.yaml` holds `${FEAST_PROJECT}`, `${REDIS_HOST}`, `${REDIS_PORT}`;
`open_store` fills them from explicit arguments (defaults: settings), so a
test can point a copy of the repo at its own Redis without touching the
process environment. Nothing here runs at import time (`import feast` costs
about 6 s).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import string
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from minirec.settings import REPO_ROOT

if TYPE_CHECKING:
    from feast import FeatureStore

REPO_PATH = REPO_ROOT / "feature_repo"
USER_SERVICE = "two_tower_v1"  # user-tower inputs (see feature_repo/services.py)
ITEM_SERVICE = "two_tower_items_v1"  # item-tower inputs and the popularity score term
REPO_FILES = ("feature_store.yaml", "entities.py", "sources.py", "views.py", "services.py")
_REPO_MODULES = ("entities", "sources", "views", "services")


class FeatureStoreError(RuntimeError):
    """A Feast step cannot run (missing tables, empty view, unreachable Redis); the message names the fix."""


def copy_repo(dest: Path, src: Path = REPO_PATH) -> Path:
    """Copy the repo definitions (not its data) to `dest`, e.g. a test's temp folder."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in REPO_FILES:
        shutil.copy2(src / name, dest / name)
    return dest


def open_store(repo_path: Path = REPO_PATH, *, project: str | None = None,
               redis_host: str | None = None, redis_port: int | None = None) -> FeatureStore:
    """A FeatureStore over `repo_path` with the yaml's ${VARS} filled (defaults from settings)."""
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    from minirec.settings import get_settings

    s = get_settings()
    values = {
        "FEAST_PROJECT": project or s.feast_project,
        "REDIS_HOST": redis_host or s.redis_host,
        "REDIS_PORT": str(redis_port or s.redis_port),
    }
    text = (repo_path / "feature_store.yaml").read_text()
    raw = yaml.safe_load(string.Template(text).safe_substitute(values))
    config = RepoConfig(**raw)
    config.repo_path = repo_path
    return FeatureStore(repo_path=str(repo_path), config=config)


@contextlib.contextmanager
def _repo_on_path(repo_path: Path) -> Iterator[None]:
    # Feast imports repo files as top-level modules relative to the cwd
    # (`from entities import user`), so run the import from inside the repo
    # and forget the modules afterwards: another repo copy must re-import.
    old_cwd = os.getcwd()
    for name in _REPO_MODULES:
        sys.modules.pop(name, None)
    sys.path.insert(0, str(repo_path))
    os.chdir(repo_path)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        sys.path.remove(str(repo_path))
        for name in _REPO_MODULES:
            sys.modules.pop(name, None)


def repo_objects(repo_path: Path = REPO_PATH) -> list[Any]:
    """Every Feast object defined in the repo files (what `feast apply` would register)."""
    from feast.repo_operations import parse_repo

    with _repo_on_path(repo_path):
        contents = parse_repo(repo_path)
    return [*contents.entities, *contents.data_sources, *contents.feature_views,
            *contents.stream_feature_views, *contents.on_demand_feature_views,
            *contents.feature_services]


def source_tables(repo_path: Path = REPO_PATH) -> dict[str, Path]:
    """Parquet files the batch sources read (name -> absolute path)."""
    data = repo_path / "data"
    return {name: data / f"{name}.parquet" for name in
            ("user_profile", "user_aggregates", "user_realtime", "item_attributes", "item_popularity")}


def check_sources(repo_path: Path = REPO_PATH) -> dict[str, int]:
    """Fail before touching the registry if a source table is missing or has no rows."""
    import pyarrow.parquet as pq

    rows = {}
    for name, path in source_tables(repo_path).items():
        if not path.exists():
            raise FeatureStoreError(f"feature table {path} is missing; run the build_training_set step "
                                    "(`make train`) to derive it from the lake")
        try:
            rows[name] = pq.ParquetFile(path).metadata.num_rows
        except Exception as exc:  # corrupt parquet
            raise FeatureStoreError(f"feature table {path} is unreadable ({exc}); rebuild it with `make train`") \
                from exc
        if rows[name] == 0:
            raise FeatureStoreError(f"feature view source {name} has no rows ({path}); "
                                    "the lake window is empty, nothing was applied")
    return rows


def apply_repo(store: FeatureStore, repo_path: Path = REPO_PATH) -> list[str]:
    """`feast apply` in-process: register entities, sources, views, services; returns names."""
    check_sources(repo_path)
    objects = repo_objects(repo_path)
    store.apply(objects)
    return sorted(getattr(o, "name", str(o)) for o in objects)


def historical_features(store: FeatureStore, entity_df: pd.DataFrame, service: str) -> pd.DataFrame:
    """Point-in-time join of `service` features onto `entity_df` (keys + `event_timestamp`).

    For every entity row, each view contributes its latest row with
    `event_timestamp <= entity event_timestamp`. Returns the rows in the
    entity_df order (Feast reorders; we restore it via a row id).
    """
    df = entity_df.copy()
    df["_row"] = range(len(df))
    fs = store.get_feature_service(service)
    out = store.get_historical_features(entity_df=df, features=fs).to_df()
    return out.sort_values("_row").drop(columns="_row").reset_index(drop=True)


@dataclass(frozen=True)
class ViewSource:
    """One feature view of a service, resolved to what an as-of join needs."""

    name: str  # feature view name
    key: str  # its single join key column, e.g. "user_id"
    features: tuple[str, ...]  # feature columns, in the service's order
    path: str  # absolute path (or URI) of the batch source's parquet file
    timestamp_field: str  # the source's event-time column
    ttl: timedelta | None  # None: a value never expires (Feast's ttl=0)


def view_sources(store: FeatureStore, service: str) -> list[ViewSource]:
    """The views of `service` as registered (feature service -> views -> batch source, fields, TTL).

    Both offline engines (pandas here, Spark in spark_join) read this, so they
    join the same files with the same rule."""
    from feast.infra.offline_stores.file_source import FileSource

    out = []
    fs = store.get_feature_service(service)
    for proj in fs.feature_view_projections:
        fv = store.get_feature_view(proj.name)
        keys = [fv.projection.join_key_map.get(c.name, c.name) for c in fv.entity_columns]
        if len(keys) != 1:
            raise FeatureStoreError(f"view {fv.name}: only single-key views are supported, got {keys}")
        src = fv.batch_source
        ttl = fv.ttl if fv.ttl and fv.ttl.total_seconds() > 0 else None
        out.append(ViewSource(name=fv.name, key=keys[0], features=tuple(f.name for f in proj.features),
                              path=FileSource.get_uri_for_file_path(store.config.repo_path, src.path),
                              timestamp_field=src.timestamp_field, ttl=ttl))
    return out


def point_in_time_join(store: FeatureStore, entity_df: pd.DataFrame, service: str) -> pd.DataFrame:
    """Same result as `historical_features`, computed with `pandas.merge_asof`.

    Feast's file offline store (dask) cross-joins every entity row with every
    feature row of the same key before filtering; with list-valued features
    that took about 40 s per view for 200 rows on this 2-core machine, far too
    slow for ~80k training labels. This function reads the *same* registered
    definitions (`view_sources`) and applies the same rule: for each entity
    row, per view, the latest feature row with `event_timestamp <= entity
    event_timestamp` (and within the TTL when one is set); among feature rows
    of one key at the same timestamp, the last in file order. Entity rows
    with no such row get NaN. tests/pipeline/test_point_in_time.py checks it
    row for row against `store.get_historical_features`.
    """
    out = entity_df.reset_index(drop=True).copy()
    out["_row"] = np.arange(len(out))
    out["event_timestamp"] = pd.to_datetime(out["event_timestamp"], utc=True)
    for view in view_sources(store, service):
        key, names = view.key, list(view.features)
        table = pd.read_parquet(view.path, columns=[key, view.timestamp_field, *names])
        if len(table) == 0:
            raise FeatureStoreError(f"feature view {view.name} has no rows ({view.path}); "
                                    "rebuild the feature tables")
        table = table.rename(columns={view.timestamp_field: "_feature_ts"})
        table["_feature_ts"] = pd.to_datetime(table["_feature_ts"], utc=True).astype("datetime64[us, UTC]")
        left = out[["_row", key, "event_timestamp"]].copy()
        left["event_timestamp"] = left["event_timestamp"].astype("datetime64[us, UTC]")
        joined = pd.merge_asof(
            left.sort_values("event_timestamp", kind="stable"),
            table.sort_values("_feature_ts", kind="stable"),
            left_on="event_timestamp", right_on="_feature_ts", by=key,
            direction="backward", allow_exact_matches=True,
        )
        if view.ttl is not None:
            stale = joined["_feature_ts"] < joined["event_timestamp"] - view.ttl
            if stale.any():  # (assigning to no rows would still turn every int column into float64)
                joined.loc[stale, names] = None
        joined = joined.set_index("_row").reindex(out["_row"])
        for name in names:
            out[name] = joined[name].values
    return out.drop(columns="_row")


def online_features(store: FeatureStore, service: str, key: str, ids: Sequence[int]) -> pd.DataFrame:
    """Online read of `service` for entity ids (column `key`), one row per id, in order."""
    fs = store.get_feature_service(service)
    return store.get_online_features(features=fs, entity_rows={key: [int(i) for i in ids]}).to_df()


def materialize(store: FeatureStore, end: datetime, start: datetime | None = None) -> None:
    """Load the latest value per entity in [start, end] from the offline tables into Redis."""
    from minirec.features.tables import CATALOGUE_EPOCH

    start = start or (CATALOGUE_EPOCH - pd.Timedelta(days=1)).to_pydatetime()
    store.materialize(start_date=start, end_date=end)
