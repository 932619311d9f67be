"""What the assignment service needs, taken from the one settings object (minirec.settings, `.env`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from minirec.settings import Settings, get_settings

# uvicorn options shared by the service and the benchmark's floor (services/assignment/floor.py):
# uvloop + httptools (C parsers), no access log, one process
UVICORN = {"loop": "uvloop", "http": "httptools", "access_log": False, "timeout_graceful_shutdown": 5}


@dataclass(frozen=True)
class AssignmentConfig:
    host: str
    port: int
    experiments: Path
    bootstrap: str
    topic_exposures: str
    exposure_buffer: int
    redis_host: str
    redis_port: int
    redis_timeout_ms: int
    feast_project: str  # prefix of the seen-sets (`<project>:seen:<user_id>`) that define "returning"
    max_body_bytes: int

    @classmethod
    def from_settings(cls, s: Settings | None = None) -> AssignmentConfig:
        s = s or get_settings()
        return cls(host=s.assignment_host, port=s.assignment_port, experiments=s.assignment_experiments_path,
                   bootstrap=s.kafka_bootstrap, topic_exposures=s.topic_exposures,
                   exposure_buffer=s.assignment_exposure_buffer, redis_host=s.redis_host, redis_port=s.redis_port,
                   redis_timeout_ms=s.assignment_redis_timeout_ms, feast_project=s.feast_project,
                   max_body_bytes=s.assignment_max_body_bytes)
