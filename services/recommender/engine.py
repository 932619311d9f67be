"""The model lifecycle of the recommender, independent of BentoML; the request path it serves is
services/recommender/request_path.py (mixed into `Engine`).

Model versions: `control` serves the newest `production` model of the
registry, `treatment` the newest `candidate` (or the production one when there
is none). A watcher thread polls the store; a newly promoted model is loaded
beside the old one and swapped in by one reference assignment, so requests in
flight finish on the version they started with.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.recommender import metrics
from services.recommender.request_path import ModelNotReady, RequestPipeline, UnknownItem
from services.recommender.retrieval import ModelVersion, load_titles, load_version

__all__ = ["Engine", "EngineConfig", "ModelNotReady", "UnknownItem"]

log = logging.getLogger(__name__)


@dataclass
class EngineConfig:
    model_store: Path
    model_name: str
    feature_repo: Path
    feature_service: str
    project: str
    redis_host: str
    redis_port: int
    redis_timeout_s: float
    items_table: Path
    kafka_bootstrap: str
    topic_impressions: str
    impression_buffer: int
    overfetch: int
    reload_interval_s: float
    impressions: bool = True
    shutdown_drain_s: float = 5.0  # close(): time to deliver buffered impressions before counting them lost
    gc_freeze: bool = False  # freeze the heap after each model load (services/recommender/heap.py)

    @classmethod
    def from_settings(cls) -> EngineConfig:
        from minirec.settings import get_settings

        s = get_settings()
        return cls(model_store=s.model_store_path, model_name=s.model_name, feature_repo=s.feature_repo_path,
                   feature_service="two_tower_v1", project=s.feast_project, redis_host=s.redis_host,
                   redis_port=s.redis_port, redis_timeout_s=s.recommender_redis_timeout_ms / 1000,
                   items_table=s.path(s.recommender_items_table), kafka_bootstrap=s.kafka_bootstrap,
                   topic_impressions=s.topic_impressions, impression_buffer=s.recommender_impression_buffer,
                   overfetch=s.recommender_overfetch, reload_interval_s=s.recommender_reload_interval_s,
                   shutdown_drain_s=s.recommender_shutdown_drain_s, gc_freeze=s.recommender_gc_freeze)


FULL_REFRESH_S = 60.0  # the watcher reads the whole registry at least this often


def store_fingerprint(store: Path, name: str) -> tuple:
    """What changes when the registry changes: the stage log's size and mtime, and each entry of
    `name` with its model.yaml's mtime (a new entry, new metadata). A few stat calls, no parsing."""
    from minirec.train.registry import STAGES_FILE

    def stat(p: Path) -> tuple:
        try:
            st = p.stat()
            return (st.st_size, st.st_mtime_ns)
        except OSError:
            return ()

    try:
        entries = sorted(e.name for e in os.scandir(store / name) if e.is_dir(follow_symlinks=False))
    except OSError:
        entries = []
    return (stat(store / STAGES_FILE), *((e, stat(store / name / e / "model.yaml")) for e in entries))


@dataclass
class Status:
    models: dict[str, ModelVersion] = field(default_factory=dict)  # variant -> version
    layout_error: str | None = None
    model_error: str | None = None


class Engine(RequestPipeline):
    def __init__(self, cfg: EngineConfig | None = None, start: bool = True):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.cfg = cfg or EngineConfig.from_settings()
        self.m = metrics.get()
        self.status = Status()
        self.features = None  # OnlineFeatures, once the Feast layout is read
        self.redis = redis.Redis(host=self.cfg.redis_host, port=self.cfg.redis_port,
                                 socket_timeout=self.cfg.redis_timeout_s,
                                 socket_connect_timeout=self.cfg.redis_timeout_s, health_check_interval=0,
                                 retry=Retry(NoBackoff(), 0))  # redis-py's default retries sleep for seconds
        self._redis_down_until = 0.0  # circuit breaker: skip the online store briefly after a failure
        self.impressions = None
        if self.cfg.impressions:
            from services.recommender.impressions import ImpressionLog

            self.impressions = ImpressionLog(
                self.cfg.kafka_bootstrap, self.cfg.topic_impressions, self.cfg.impression_buffer,
                on_sent=lambda n: self.m.sent.inc(n),
                on_dropped=lambda reason, n: self.m.dropped.labels(reason).inc(n),
                on_depth=lambda n: self.m.queue_depth.set(n))
        self._cache: dict[str, ModelVersion] = {}  # identity -> loaded version (control and treatment may share)
        self._serving: dict[str, str] = {}  # variant -> identity being served
        self._titles: dict[int, str] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="model-watcher", daemon=True)
        if start:
            self._thread.start()

    # ------------------------------------------------------------ lifecycle
    def _load_layout(self) -> None:
        from services.recommender.features import OnlineFeatures, open_layout

        layout = open_layout(self.cfg.feature_repo, self.cfg.feature_service, self.cfg.project,
                             self.cfg.redis_host, self.cfg.redis_port)
        self.features = OnlineFeatures(self.redis, layout)
        log.info("online features: %d fields of %s from %s", len(layout.features), layout.service,
                 self.cfg.feature_repo)

    def _wanted(self) -> dict[str, str]:
        """variant -> content identity (tag@sha) the registry says it should serve.

        Control serves production; treatment serves the newest candidate (production when there is none).
        Identities, not tags, so a model whose files changed under one tag would still be reloaded."""
        from minirec.train.registry import get_stage

        prod = get_stage(self.cfg.model_store, self.cfg.model_name, "production")
        if prod is None:
            return {}
        cand = get_stage(self.cfg.model_store, self.cfg.model_name, "candidate")
        return {"control": prod.identity, "treatment": (cand or prod).identity}

    def refresh(self) -> bool:
        """Load what the registry says each arm should serve; True when something changed."""
        if self.features is None:
            try:
                self._load_layout()
                self.status.layout_error = None
            except Exception as exc:
                self.status.layout_error = f"{type(exc).__name__}: {exc}"
                log.warning("feature layout not loaded: %s", self.status.layout_error)
        wanted = self._wanted()
        if not wanted:
            self.status.model_error = f"no production {self.cfg.model_name} model in {self.cfg.model_store}"
            return False
        if self._titles is None:
            self._titles = load_titles(self.cfg.items_table)
        if self._serving == wanted:
            return False
        loaded = {}
        for variant, identity in wanted.items():
            if identity not in self._cache:
                tag = identity.split("@", 1)[0]
                self._cache[identity] = load_version(self.cfg.model_store, self.cfg.model_name, tag, self._titles)
                log.info("loaded model %s", identity)
            loaded[variant] = self._cache[identity]
        old = self.status.models
        self.status.models = loaded  # the swap: one reference assignment
        self._serving = wanted
        self.status.model_error = None
        for variant, mv in old.items():
            self.m.model_info.labels(variant, mv.tag).set(0)
        for variant, mv in loaded.items():
            self.m.model_info.labels(variant, mv.tag).set(1)
        self._cache = {i: v for i, v in self._cache.items() if i in wanted.values()}
        if self.cfg.gc_freeze:  # the new model and everything loaded so far: out of the full collections
            from services.recommender.heap import settle

            settle()
        return True

    def _watch(self) -> None:
        """Poll the store every reload_interval_s; the full read only when its fingerprint moved.

        A full `refresh` parses every entry's model.yaml through BentoML (≈ 3 ms of CPU with one
        entry on this machine, growing with every retrain kept in the store) while holding the GIL,
        so polling it every 2 s stalled requests in flight; a fingerprint is a few stat calls.
        A full refresh still runs every FULL_REFRESH_S, whatever the fingerprint says."""
        seen: tuple | None = None
        full_at = 0.0
        while not self._stop.is_set():
            try:
                fp = store_fingerprint(self.cfg.model_store, self.cfg.model_name)
                if (fp != seen or self.features is None or "control" not in self.status.models
                        or time.monotonic() - full_at > FULL_REFRESH_S):
                    self.refresh()
                    seen, full_at = fp, time.monotonic()
            except Exception as exc:  # a half-written bundle, a store being promoted: retry next tick
                seen = None
                self.status.model_error = f"{type(exc).__name__}: {exc}"
                log.warning("model refresh failed: %s", self.status.model_error)
            self._stop.wait(self.cfg.reload_interval_s)

    def close(self) -> None:
        """Stop the watcher; drain the impression buffer within cfg.shutdown_drain_s (rest counted)."""
        self._stop.set()
        if self.impressions is not None:
            self.impressions.close(timeout_s=self.cfg.shutdown_drain_s)

    # ------------------------------------------------------------ readiness
    def _model_ok(self) -> bool:
        mv = self.status.models.get("control")
        return mv is not None and mv.index.ntotal > 0

    def readiness(self) -> dict[str, Any]:
        """The /readyz payload. Ready means "can answer": a model is loaded. An unreachable online
        store is a degraded state (every answer is then the popularity fallback), reported here and
        in the `recommender_online_store_up` gauge; it must not take every replica out of the load
        balancer, or the fallback would never be served."""
        redis_ok = False
        try:
            redis_ok = bool(self.redis.ping())
        except Exception:  # any failure of the probe means "not answering"
            pass
        self.m.online_store_up.set(1 if redis_ok else 0)
        degraded = [name for name, bad in (("online_store_unavailable", not redis_ok),
                                           ("feature_layout_not_loaded", self.features is None)) if bad]
        models = {v: m.tag for v, m in self.status.models.items()}
        return {"ready": self._model_ok(), "degraded": degraded, "model": self._model_ok(),
                "online_store": redis_ok, "features": self.features is not None, "models": models,
                "model_error": self.status.model_error, "layout_error": self.status.layout_error}

    def ready(self) -> bool:
        return self._model_ok()
