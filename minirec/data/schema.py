"""Canonical parquet schemas shared by MovieLens loading, the synthetic
generator, Feast sources and training. One definition, three tables."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

USERS = pa.schema(
    [
        ("user_id", pa.int64()),
        ("age", pa.int16()),
        ("gender", pa.string()),  # "M" / "F"
        ("occupation", pa.string()),
        ("zip_code", pa.string()),
    ]
)

ITEMS = pa.schema(
    [
        ("item_id", pa.int64()),
        ("title", pa.string()),
        ("year", pa.int16()),  # release year; null when unknown
        ("genres", pa.list_(pa.string())),
    ]
)

INTERACTIONS = pa.schema(
    [
        ("user_id", pa.int64()),
        ("item_id", pa.int64()),
        ("rating", pa.float32()),  # explicit rating 1..5
        ("event_timestamp", pa.timestamp("us", tz="UTC")),
    ]
)

TABLES = {"users": USERS, "items": ITEMS, "interactions": INTERACTIONS}


def table_paths(folder: Path) -> dict[str, Path]:
    """Where each canonical table lives inside a dataset folder."""
    return {name: folder / f"{name}.parquet" for name in TABLES}
