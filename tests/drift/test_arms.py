"""Per-arm counts the drift job exports for the experiments dashboard (lists served, clicks on them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from monitoring.drift.job import per_arm, read_impressions


def test_clicks_count_for_the_arm_whose_list_they_came_from():
    imp = pd.DataFrame({"request_id": ["a", "b", "c"], "variant": ["control", "treatment", "treatment"]})
    clicks = pd.DataFrame({"request_id": ["b", "b", "c", None, "zzz"]})  # organic and unknown lists ignored
    assert per_arm(imp, clicks) == {"control": (1, 0), "treatment": (2, 3)}


def test_a_lake_written_before_impressions_had_a_variant_reads_as_control(tmp_path):
    day = datetime(2026, 1, 2, tzinfo=UTC)
    folder = tmp_path / "impressions" / "date=2026-01-02"
    folder.mkdir(parents=True)
    table = pa.table({"event_timestamp": pa.array([day + timedelta(seconds=1)], pa.timestamp("us", tz="UTC")),
                      "user_id": [1], "request_id": ["r"], "items": [[1, 2]], "scores": [[0.5, 0.4]],
                      "model_version": ["v1"], "fallback": pa.array([None], pa.string())})
    pq.write_table(table, folder / "part-0.parquet")
    imp = read_impressions(tmp_path, day, day + timedelta(minutes=1))
    assert list(imp["variant"]) == ["control"] and list(imp["request_id"]) == ["r"]
