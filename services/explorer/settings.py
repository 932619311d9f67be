"""What the explorer needs, taken from the one settings object (minirec.settings, `.env`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from minirec.settings import Settings, get_settings


@dataclass(frozen=True)
class ExplorerConfig:
    host: str
    port: int
    recommender_url: str
    assignment_url: str
    drift_metrics_url: str
    experiment: str  # the experiment whose arms the page shows (its readout: artifacts/ab/<experiment>/)
    data_dir: Path  # MovieLens folder: interactions.parquet (history), items.parquet (titles), users.parquet
    lake_dir: Path  # the stream processor's lake: clicks and ratings since training
    ab_dir: Path  # artifacts/ab: <experiment>/report.json written by `make ab-report`
    feature_repo: Path
    feast_project: str
    redis_host: str
    redis_port: int
    bootstrap: str
    topic_interactions: str
    timeout_s: float  # per call to another service; slower = "not available" on the page

    @classmethod
    def from_settings(cls, s: Settings | None = None) -> ExplorerConfig:
        s = s or get_settings()
        return cls(host=s.explorer_host, port=s.explorer_port, recommender_url=s.recommender_url,
                   assignment_url=s.assignment_url,
                   drift_metrics_url=f"http://{s.drift_metrics_host}:{s.drift_metrics_port}/metrics",
                   experiment=s.explorer_experiment, data_dir=s.path(s.explorer_dataset_dir), lake_dir=s.stream_lake_path,
                   ab_dir=s.artifacts_path / "ab", feature_repo=s.feature_repo_path, feast_project=s.feast_project,
                   redis_host=s.redis_host, redis_port=s.redis_port, bootstrap=s.kafka_bootstrap,
                   topic_interactions=s.topic_interactions, timeout_s=s.explorer_timeout_ms / 1000)
