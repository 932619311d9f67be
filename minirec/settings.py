"""One settings object built from the tracked `.env` (loopback defaults).

Precedence (pydantic-settings): explicit kwargs > process environment > `.env`.
Compose reads the same `.env` for `${VAR}` substitution and overrides only
hostnames, so no port or topic name is written twice in the repository.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_FILE = Path(os.environ.get("MINIREC_ENV_FILE", REPO_ROOT / ".env"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore")

    # Kafka
    kafka_host: str = "127.0.0.1"
    kafka_port: int = Field(9092, ge=1, le=65535)
    kafka_controller_port: int = Field(9093, ge=1, le=65535)
    kafka_internal_port: int = Field(29092, ge=1, le=65535)
    kafka_heap_mb: int = Field(384, ge=128)
    kafka_partitions: int = Field(3, ge=1)
    topic_interactions: str = "interactions"
    topic_impressions: str = "impressions"
    topic_exposures: str = "exposures"
    topic_deadletter: str = "deadletter"

    # Redis
    redis_host: str = "127.0.0.1"
    redis_port: int = Field(6379, ge=1, le=65535)

    # Prometheus / Grafana
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int = Field(9090, ge=1, le=65535)
    grafana_port: int = Field(3000, ge=1, le=65535)
    # exporters for the infrastructure (Prometheus's registered default ports); they listen on exporter_host
    exporter_host: str = "127.0.0.1"
    redis_exporter_port: int = Field(9121, ge=1, le=65535)
    node_exporter_port: int = Field(9100, ge=1, le=65535)
    kafka_jmx_exporter_port: int = Field(9404, ge=1, le=65535)

    # Folders, relative to the repo root unless absolute
    data_dir: Path = Path("data")
    run_dir: Path = Path("run")
    artifacts_dir: Path = Path("artifacts")

    # --- training ---
    feast_project: str = "minirec"
    model_store_dir: Path = Path("run/bentoml")
    model_name: str = "two_tower"
    gate_tolerance: float = Field(0.005, ge=0.0)
    # fixed: base MovieLens, temporal 80/10/10 (the benchmark); rolling: base before the release cut plus
    # the lake's interactions, newest window held out (the loop retrain); see minirec/pipeline/protocol.py
    train_protocol: Literal["fixed", "rolling"] = "fixed"
    # experiment tracking (minirec/pipeline/tracking.py): every pipeline run is one MLflow run here; a relative
    # sqlite path is under the repo root, artifacts go beside the database; empty = tracking off
    mlflow_tracking_uri: str = "sqlite:///run/mlflow/mlflow.db"
    mlflow_host: str = "127.0.0.1"  # `make mlflow`: the UI over that store (compose sets 0.0.0.0)
    mlflow_port: int = Field(5000, ge=1, le=65535)
    # the point-in-time join of build_training_set (minirec/features/training_set.py): pandas (merge_asof,
    # the default), feast (Feast's file offline store, slow) or spark (minirec/features/spark_join.py)
    offline_engine: Literal["pandas", "feast", "spark"] = "pandas"
    # where the spark engine runs: local[N] = N threads in this process's JVM; a standalone cluster is
    # spark://host:7077 (the feature parquet files must then be readable at the same path by every executor)
    spark_master: str = "local[2]"

    # --- serving ---
    recommender_host: str = "127.0.0.1"
    recommender_port: int = Field(3001, ge=1, le=65535)
    recommender_floor_port: int = Field(3002, ge=1, le=65535)
    recommender_batching: bool = True
    recommender_max_batch_size: int = Field(32, ge=1, le=1024)
    recommender_max_latency_ms: int = Field(2000, ge=1)
    recommender_max_concurrency: int = Field(128, ge=1)
    recommender_workers: int = Field(1, ge=1)
    recommender_threads: int = Field(1, ge=1)
    recommender_overfetch: int = Field(50, ge=0)
    recommender_reload_interval_s: float = Field(2.0, gt=0)
    recommender_redis_timeout_ms: int = Field(100, ge=1)
    recommender_impression_buffer: int = Field(10000, ge=1)
    recommender_shutdown_drain_s: float = Field(5.0, ge=0)
    recommender_gc_freeze: bool = True
    feature_repo_dir: Path = Path("feature_repo")
    recommender_items_table: Path = Path("data/ml-100k/items.parquet")

    # --- stream processor (services/stream) ---
    stream_group_id: str = "minirec-stream"
    stream_batch_size: int = Field(1000, ge=1)  # max events per micro-batch (one Feast push, one lake part)
    stream_batch_max_wait_ms: int = Field(100, ge=1)  # a batch closes at this age even when not full
    stream_metrics_port: int = Field(3004, ge=1, le=65535)
    stream_metrics_host: str = "127.0.0.1"
    stream_lake_dir: Path = Path("data/lake")  # <dir>/<table>/date=YYYY-MM-DD/part-*.parquet
    stream_items_table: Path = Path("data/ml-100k/items.parquet")  # known item ids; missing file = no check
    stream_retry_max_s: float = Field(5.0, gt=0)  # backoff cap while Redis, the lake or Kafka is down
    stream_group_stuck_s: float = Field(120.0, gt=0)  # consumer replaced when its group is unstable this long

    # --- traffic simulator (services/simulator) ---
    simulator_speedup: float = Field(3600.0, gt=0)
    simulator_k: int = Field(10, ge=1, le=100)
    simulator_seed: int = 0
    simulator_concurrency: int = Field(8, ge=1, le=256)

    # --- A/B assignment service (services/assignment) ---
    assignment_host: str = "127.0.0.1"
    assignment_port: int = Field(3005, ge=1, le=65535)
    assignment_experiments: Path = Path("services/assignment/experiments.yaml")
    assignment_exposure_buffer: int = Field(10000, ge=1)  # queued Exposure events; beyond: dropped, counted
    assignment_redis_timeout_ms: int = Field(50, ge=1)  # audience lookup; slower = "audience_unknown"
    assignment_max_body_bytes: int = Field(4096, ge=64)  # larger POST bodies get a 413

    # --- drift monitor (monitoring/drift; `make drift`) ---
    drift_dir: Path = Path("run/drift")  # state, baseline, audit log, Evidently workspace, HTML reports
    drift_reference_dir: Path = Path("artifacts/latest/reference")  # what export_reference wrote
    drift_lake_dir: Path = Path("data/lake")  # the stream processor's event lake
    drift_window_s: float = Field(60.0, gt=0)  # tumbling windows of event time
    drift_lateness_s: float = Field(5.0, ge=0)  # a window is read this long after its end (late events)
    drift_interval_s: float = Field(10.0, gt=0)  # how often the loop looks for closed windows
    drift_min_impressions: int = Field(200, ge=1)  # smaller windows are recorded as too_small, not compared
    drift_share: float = Field(0.5, gt=0, le=1)  # user-feature drift when this share of columns drifts
    drift_num_method: str = "wasserstein"  # numeric columns vs the training reference (Evidently name)
    drift_num_threshold: float = Field(0.1, gt=0)
    drift_cat_method: str = "psi"  # categorical columns vs the training reference
    drift_cat_threshold: float = Field(0.1, gt=0)
    drift_score_threshold: float = Field(0.2, gt=0)  # score columns (judged alone: above window noise)
    drift_outcome_p: float = Field(0.002, gt=0, lt=1)  # p-value threshold of the outcome tests vs the baseline
    drift_baseline_windows: int = Field(3, ge=1)  # served windows pooled as the outcome baseline per model
    drift_metrics_host: str = "127.0.0.1"
    drift_metrics_port: int = Field(3006, ge=1, le=65535)  # /metrics and the Alertmanager webhook
    drift_ui_port: int = Field(8000, ge=1, le=65535)  # `evidently ui` over the workspace
    drift_trigger_windows: int = Field(3, ge=1)  # sustained drift: this many drifted windows in a row
    drift_cooldown_s: float = Field(3600.0, ge=0)  # no second retrain within this time of the last one
    drift_dry_run: bool = False  # decide and audit, but trigger nothing
    drift_trigger_mode: str = "alertmanager"  # alertmanager (webhook) | job (the loop decides itself)
    # native retrain when Airflow is not set: the rolling protocol (base + the lake's live events)
    drift_train_command: str = "make --no-print-directory train ARGS='--protocol rolling'"
    drift_airflow_url: str = ""  # e.g. http://127.0.0.1:8080; empty: retrain natively
    drift_airflow_dag: str = "train_two_tower"
    drift_airflow_user: str = "admin"
    drift_airflow_password: str = ""  # empty: read run/airflow's generated standalone password file
    alertmanager_host: str = "127.0.0.1"
    alertmanager_port: int = Field(9095, ge=1, le=65535)  # 9093 is Kafka's controller, 9094 AM's cluster

    # --- explorer page (services/explorer; started by `make stack`) ---
    explorer_host: str = "127.0.0.1"
    explorer_port: int = Field(3007, ge=1, le=65535)
    explorer_dataset_dir: Path = Path("data/ml-100k")  # ratings (history), items (titles), users (random pick)
    explorer_experiment: str = "ranker_v1"  # whose arms, assignment and readout the page shows
    explorer_timeout_ms: int = Field(2000, ge=1)  # per call to another service; slower = "not available"

    # --- Airflow ---
    airflow_port: int = Field(8080, ge=1, le=65535)
    postgres_port: int = Field(5432, ge=1, le=65535)

    # --- derived values (never stored twice) ---
    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.kafka_host}:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.redis_host}:{self.redis_port}/0"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.prometheus_host}:{self.prometheus_port}"

    @property
    def topics(self) -> list[str]:
        return [
            self.topic_interactions,
            self.topic_impressions,
            self.topic_exposures,
            self.topic_deadletter,
        ]

    def path(self, p: Path) -> Path:
        """Resolve a configured folder against the repo root."""
        return p if p.is_absolute() else REPO_ROOT / p

    @property
    def data_path(self) -> Path:
        return self.path(self.data_dir)

    @property
    def run_path(self) -> Path:
        return self.path(self.run_dir)

    @property
    def artifacts_path(self) -> Path:
        return self.path(self.artifacts_dir)

    # --- training ---
    @property
    def model_store_path(self) -> Path:
        return self.path(self.model_store_dir)

    # --- serving ---
    @property
    def recommender_url(self) -> str:
        return f"http://{self.recommender_host}:{self.recommender_port}"

    @property
    def feature_repo_path(self) -> Path:
        return self.path(self.feature_repo_dir)

    # --- stream processor ---
    @property
    def stream_lake_path(self) -> Path:
        return self.path(self.stream_lake_dir)

    # --- A/B assignment service ---
    @property
    def assignment_url(self) -> str:
        return f"http://{self.assignment_host}:{self.assignment_port}"

    @property
    def assignment_experiments_path(self) -> Path:
        return self.path(self.assignment_experiments)

    # --- drift monitor ---
    @property
    def drift_path(self) -> Path:
        return self.path(self.drift_dir)

    @property
    def drift_reference_path(self) -> Path:
        return self.path(self.drift_reference_dir)

    @property
    def drift_lake_path(self) -> Path:
        return self.path(self.drift_lake_dir)

    @property
    def explorer_url(self) -> str:
        return f"http://{self.explorer_host}:{self.explorer_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{self.alertmanager_host}:{self.alertmanager_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
