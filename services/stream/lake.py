"""The event lake: parquet parts partitioned by event date, appended idempotently by event_id.

    <lake>/<table>/date=YYYY-MM-DD/part-<unix ns>-<rand>.parquet     table: interactions|impressions|exposures

A part is written to a hidden temp file and renamed (atomic on one
filesystem), so a reader or a kill -9 never sees half a part; readers
(pyarrow datasets, pandas) skip names starting with "." by default.

Idempotency: before a write, the event ids in a partition's parts (the
`event_id` column only) are cached; parts that appeared since the last look
(written by another processor of the consumer group) are read before every
write. An event whose id is there, or earlier in the same batch, is skipped.
So replaying a batch after a crash, by this process or by the group member
that took the partition over, appends nothing twice. The cache is one set of ids per partition that
was touched since start (32-hex ids: ~100 bytes each, fine for the days a
processor sees; a multi-day replay of millions would want a compaction job).

The interactions table leads with the canonical columns of
minirec.data.schema.INTERACTIONS (user_id, item_id, rating, event_timestamp),
so the training pipeline can read base data and new partitions together.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from minirec.events import Event, Exposure, Impression, Interaction

TS = pa.timestamp("us", tz="UTC")
COMMON = [("event_id", pa.string()), ("schema_version", pa.int64())]
SCHEMAS: dict[str, pa.Schema] = {
    "interactions": pa.schema([("user_id", pa.int64()), ("item_id", pa.int64()), ("rating", pa.float32()),
                               ("event_timestamp", TS), *COMMON, ("action", pa.string()),
                               ("request_id", pa.string()), ("position", pa.int64()),
                               ("variant", pa.string())]),
    "impressions": pa.schema([("user_id", pa.int64()), ("event_timestamp", TS), *COMMON,
                              ("request_id", pa.string()), ("items", pa.list_(pa.int64())),
                              ("scores", pa.list_(pa.float64())), ("model_version", pa.string()),
                              ("variant", pa.string()), ("fallback", pa.string())]),
    "exposures": pa.schema([("user_id", pa.int64()), ("event_timestamp", TS), *COMMON,
                            ("experiment", pa.string()), ("variant", pa.string())]),
}
TABLE_OF: dict[type[Event], str] = {Interaction: "interactions", Impression: "impressions", Exposure: "exposures"}


def partition_dir(lake: Path, table: str, event: Event) -> Path:
    """The folder of the event's UTC date."""
    return lake / table / f"date={event.event_time.astimezone(UTC).date().isoformat()}"


def _row(event: Event) -> dict:
    d = event.model_dump(exclude={"kind", "event_time"})
    d["event_timestamp"] = event.event_time
    return d


def read_event_ids(part_dir: Path, skip: set[str] | None = None) -> tuple[set[str], set[str]]:
    """(event ids, part file names read) of the parts in `part_dir` whose names are not in `skip`."""
    ids: set[str] = set()
    names: set[str] = set()
    for f in sorted(part_dir.glob("part-*.parquet")):
        if skip is not None and f.name in skip:
            continue
        ids.update(pq.read_table(f, columns=["event_id"]).column("event_id").to_pylist())
        names.add(f.name)
    return ids, names


class LakeWriter:
    def __init__(self, root: Path):
        self.root = root
        self._ids: dict[Path, set[str]] = {}  # partition dir -> event ids already in it
        self._parts: dict[Path, set[str]] = {}  # partition dir -> part names already read or written

    def _known(self, part_dir: Path) -> set[str]:
        return self._ids.setdefault(part_dir, set())

    def _refresh(self, part_dir: Path) -> None:
        """Read the parts other group members wrote into `part_dir` since the last look."""
        if part_dir.exists():
            ids, names = read_event_ids(part_dir, skip=self._parts.setdefault(part_dir, set()))
            self._known(part_dir).update(ids)
            self._parts[part_dir].update(names)

    def write(self, events: Sequence[Event]) -> list[bool]:
        """Append the events not yet in the lake; returns, per event, True when it was new.

        Raises OSError (disk full, lake unmounted, permissions) with nothing recorded as written."""
        groups: dict[tuple[str, Path], list[Event]] = {}
        fresh: list[bool] = []
        pending: dict[Path, set[str]] = {}
        for e in events:
            table = TABLE_OF[type(e)]
            d = partition_dir(self.root, table, e)
            if d not in pending:
                self._refresh(d)
            seen = pending.setdefault(d, set())
            if e.event_id in self._known(d) or e.event_id in seen:
                fresh.append(False)
                continue
            fresh.append(True)
            seen.add(e.event_id)
            groups.setdefault((table, d), []).append(e)
        for (table, d), evs in groups.items():
            d.mkdir(parents=True, exist_ok=True)
            arrow = pa.Table.from_pylist([_row(e) for e in evs], schema=SCHEMAS[table])
            name = f"part-{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet"
            tmp = d / f".{name}.tmp"
            pq.write_table(arrow, tmp)
            os.replace(tmp, d / name)
            self._known(d).update(e.event_id for e in evs)  # only after the part is visible
            self._parts.setdefault(d, set()).add(name)
        return fresh
