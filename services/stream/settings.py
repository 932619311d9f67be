"""What the processor needs, taken from the one settings object (minirec.settings, `.env`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from minirec.settings import Settings, get_settings


@dataclass(frozen=True)
class StreamConfig:
    bootstrap: str
    group_id: str
    topic_interactions: str
    topic_impressions: str
    topic_exposures: str
    topic_deadletter: str
    redis_host: str
    redis_port: int
    feast_project: str
    feature_repo: Path
    lake_dir: Path
    items_table: Path
    batch_size: int
    batch_max_wait_ms: int
    metrics_port: int
    metrics_host: str
    retry_max_s: float
    group_stuck_s: float  # watchdog.py: replace a consumer whose group is unstable this long

    @classmethod
    def from_settings(cls, s: Settings | None = None) -> StreamConfig:
        s = s or get_settings()
        return cls(bootstrap=s.kafka_bootstrap, group_id=s.stream_group_id,
                   topic_interactions=s.topic_interactions, topic_impressions=s.topic_impressions,
                   topic_exposures=s.topic_exposures, topic_deadletter=s.topic_deadletter,
                   redis_host=s.redis_host, redis_port=s.redis_port, feast_project=s.feast_project,
                   feature_repo=s.feature_repo_path, lake_dir=s.stream_lake_path,
                   items_table=s.path(s.stream_items_table), batch_size=s.stream_batch_size,
                   batch_max_wait_ms=s.stream_batch_max_wait_ms, metrics_port=s.stream_metrics_port,
                   metrics_host=s.stream_metrics_host,
                   retry_max_s=s.stream_retry_max_s, group_stuck_s=s.stream_group_stuck_s)

    def to_env(self, metrics_port: int | None = None) -> dict[str, str]:
        """This config as the environment overrides `python -m services.stream` reads (.env names)."""
        host, port = self.bootstrap.split(":")
        return {"KAFKA_HOST": host, "KAFKA_PORT": port, "STREAM_GROUP_ID": self.group_id,
                "TOPIC_INTERACTIONS": self.topic_interactions, "TOPIC_IMPRESSIONS": self.topic_impressions,
                "TOPIC_EXPOSURES": self.topic_exposures, "TOPIC_DEADLETTER": self.topic_deadletter,
                "REDIS_HOST": self.redis_host, "REDIS_PORT": str(self.redis_port),
                "FEAST_PROJECT": self.feast_project, "FEATURE_REPO_DIR": str(self.feature_repo),
                "STREAM_LAKE_DIR": str(self.lake_dir), "STREAM_ITEMS_TABLE": str(self.items_table),
                "STREAM_BATCH_SIZE": str(self.batch_size), "STREAM_BATCH_MAX_WAIT_MS": str(self.batch_max_wait_ms),
                "STREAM_METRICS_PORT": str(self.metrics_port if metrics_port is None else metrics_port),
                "STREAM_RETRY_MAX_S": str(self.retry_max_s), "STREAM_GROUP_STUCK_S": str(self.group_stuck_s)}

    @property
    def topics(self) -> list[str]:
        return [self.topic_interactions, self.topic_impressions, self.topic_exposures]
