"""Reading the event lake (the stream processor writes it; services/stream/lake.py).

    <lake>/<table>/date=YYYY-MM-DD/part-<unix ns>-<rand>.parquet     table: interactions|impressions|exposures

Partitions are UTC event dates and every row carries `event_timestamp` (UTC,
microseconds), so a time range touches only the partitions of its dates.
Parts are renamed into place whole; names starting with "." are temp files
and are skipped. Rows are unique by `event_id` within a partition (the
writer's idempotency), so a reader needs no de-duplication of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

TABLES = ("interactions", "impressions", "exposures")


def partitions(lake: Path, table: str, start: datetime, end: datetime) -> list[Path]:
    """The partition folders that can hold events in [start, end) (only those that exist)."""
    if table not in TABLES:
        raise ValueError(f"unknown lake table {table!r}; tables are {', '.join(TABLES)}")
    day, last = start.astimezone(UTC).date(), end.astimezone(UTC).date()
    out = []
    while day <= last:
        d = Path(lake) / table / f"date={day.isoformat()}"
        if d.is_dir():
            out.append(d)
        day += timedelta(days=1)
    return out


def read_range(lake: Path, table: str, start: datetime, end: datetime,
               columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows of `table` with start <= event_timestamp < end, oldest first (empty frame when none)."""
    parts = [f for d in partitions(lake, table, start, end) for f in sorted(d.glob("part-*.parquet"))]
    cols = None if columns is None else list(dict.fromkeys(["event_timestamp", *columns]))
    ts_lo, ts_hi = pd.Timestamp(start).tz_convert(UTC), pd.Timestamp(end).tz_convert(UTC)
    frames = []
    for f in parts:
        t = pq.read_table(f, columns=cols)
        ts = t.column("event_timestamp")
        keep = pa.compute.and_(pa.compute.greater_equal(ts, pa.scalar(ts_lo, ts.type)),
                               pa.compute.less(ts, pa.scalar(ts_hi, ts.type)))
        t = t.filter(keep)
        if t.num_rows:
            frames.append(t.to_pandas())
    if not frames:
        return pd.DataFrame(columns=cols or ["event_timestamp"])
    return pd.concat(frames, ignore_index=True).sort_values("event_timestamp", kind="stable").reset_index(drop=True)


def _edge_time(lake: Path, table: str, newest: bool) -> datetime | None:
    root = Path(lake) / table
    days = sorted(p for p in root.glob("date=*") if p.is_dir()) if root.is_dir() else []
    for d in reversed(days) if newest else days:
        files = sorted(d.glob("part-*.parquet"))
        if files:
            ts = pa.concat_arrays([pq.read_table(f, columns=["event_timestamp"]).column(0).combine_chunks()
                                   for f in files])
            if len(ts):
                return (pa.compute.max(ts) if newest else pa.compute.min(ts)).as_py()
    return None


def newest_time(lake: Path, table: str) -> datetime | None:
    """The largest event_timestamp in `table` (reads only the newest partition), None when empty."""
    return _edge_time(lake, table, newest=True)


def oldest_time(lake: Path, table: str) -> datetime | None:
    """The smallest event_timestamp in `table` (reads only the oldest partition), None when empty."""
    return _edge_time(lake, table, newest=False)
