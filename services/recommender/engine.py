"""The request pipeline and the model lifecycle, independent of BentoML.

    recommend(requests)                      one call = one batch (1 with batching off)
      features  one Redis round trip: HMGET of every user's Feast hash + their seen-set
      encode    user tower on the non-cold users          (B, d+1)
      retrieve  FAISS top-K' for the whole batch, K' = k + overfetch, then drop -1, seen and
                duplicate ids; users left with fewer than k get a second, deeper search
                (K' = k + |seen| + overfetch): HNSW cost grows with K', heavy users are few
      filter    popularity lists, response objects, impression events
    cold user (no online row)        -> popularity list, fallback="cold_start"
    Redis unreachable                -> popularity list, fallback="online_store_unavailable"
    model not loaded                 -> ModelNotReady (the API answers 503; readiness is false)

Model versions: `control` serves the newest `production` model of the
registry, `treatment` the newest `candidate` (or the production one when there
is none). A watcher thread polls the store; a newly promoted model is loaded
beside the old one and swapped in by one reference assignment, so requests in
flight finish on the version they started with.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minirec.events import Impression, encode, key_of
from services.recommender import metrics
from services.recommender.retrieval import ModelVersion, load_titles, load_version, popular_k, top_k
from services.recommender.schemas import (
    Item,
    RecommendRequest,
    RecommendResponse,
    SimilarItemsRequest,
    SimilarItemsResponse,
    new_request_id,
)

log = logging.getLogger(__name__)


class ModelNotReady(RuntimeError):
    """No model is loaded yet (or the registry has no production model)."""


class UnknownItem(ValueError):
    pass


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

    @classmethod
    def from_settings(cls) -> EngineConfig:
        from minirec.settings import get_settings

        s = get_settings()
        return cls(model_store=s.model_store_path, model_name=s.model_name, feature_repo=s.feature_repo_path,
                   feature_service="two_tower_v1", project=s.feast_project, redis_host=s.redis_host,
                   redis_port=s.redis_port, redis_timeout_s=s.recommender_redis_timeout_ms / 1000,
                   items_table=s.path(s.recommender_items_table), kafka_bootstrap=s.kafka_bootstrap,
                   topic_impressions=s.topic_impressions, impression_buffer=s.recommender_impression_buffer,
                   overfetch=s.recommender_overfetch, reload_interval_s=s.recommender_reload_interval_s)


@dataclass
class Status:
    models: dict[str, ModelVersion] = field(default_factory=dict)  # variant -> version
    layout_error: str | None = None
    model_error: str | None = None


class Engine:
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
                on_dropped=lambda reason, n: self.m.dropped.labels(reason).inc(n))
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
        return True

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception as exc:  # a half-written bundle, a store being promoted: retry next tick
                self.status.model_error = f"{type(exc).__name__}: {exc}"
                log.warning("model refresh failed: %s", self.status.model_error)
            self._stop.wait(self.cfg.reload_interval_s)

    def close(self) -> None:
        self._stop.set()
        if self.impressions is not None:
            self.impressions.close()

    # ------------------------------------------------------------ readiness
    def readiness(self) -> dict[str, Any]:
        redis_ok = False
        try:
            redis_ok = bool(self.redis.ping())
        except Exception:
            pass
        models = {v: m.tag for v, m in self.status.models.items()}
        return {"model": "control" in models and self.status.models["control"].index.ntotal > 0,
                "online_store": redis_ok, "features": self.features is not None, "models": models,
                "model_error": self.status.model_error, "layout_error": self.status.layout_error}

    def ready(self) -> bool:
        r = self.readiness()
        return bool(r["model"] and r["online_store"] and r["features"])

    # ------------------------------------------------------------ requests
    def _version(self, variant: str) -> ModelVersion:
        mv = self.status.models.get(variant)
        if mv is None:
            raise ModelNotReady(self.status.model_error or "model not loaded yet")
        return mv

    def recommend(self, reqs: list[RecommendRequest]) -> list[RecommendResponse]:
        t0 = time.perf_counter()
        models = self.status.models  # one snapshot per batch: a swap never splits a batch
        if "control" not in models:
            raise ModelNotReady(self.status.model_error or "model not loaded yet")
        n = len(reqs)
        rows: list[dict | None] = [None] * n
        seen: list[set[int]] = [set() for _ in range(n)]
        fallback: list[str | None] = [None] * n
        if self.features is None or time.monotonic() < self._redis_down_until:
            fallback = ["online_store_unavailable"] * n
        else:
            try:
                rows, seen = self.features.read([r.user_id for r in reqs])
                fallback = [None if row is not None else "cold_start" for row in rows]
                for row, s in zip(rows, seen, strict=True):  # the online history is seen too, even
                    if row and row.get("last_items"):  # before the seen-set has caught up
                        s.update(int(i) for i in row["last_items"])
            except Exception as exc:  # redis.ConnectionError / TimeoutError
                log.debug("online store unavailable: %s", exc)
                fallback = ["online_store_unavailable"] * n
                self._redis_down_until = time.monotonic() + 0.5  # retry the store at most twice a second
        t1 = time.perf_counter()
        results: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        # group the personalised requests by model version: one encode + one search per version
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(reqs):
            if fallback[i] is None:
                groups.setdefault(models.get(r.variant, models["control"]).tag, []).append(i)
        enc = ret = 0.0
        for tag, idx in groups.items():
            mv = next(m for m in models.values() if m.tag == tag)
            ta = time.perf_counter()
            q = mv.user_vectors([rows[i] for i in idx], [reqs[i].user_id for i in idx])
            tb = time.perf_counter()
            # pass 1: K' = k + overfetch for the whole group (cheap: HNSW cost grows with K')
            scores, ids = mv.search(q, max(reqs[i].k for i in idx) + self.cfg.overfetch)
            short = []
            for j, i in enumerate(idx):
                excl = seen[i] if reqs[i].exclude_seen else set()
                results[i] = top_k(ids[j], scores[j], reqs[i].k, excl)
                if len(results[i]) < reqs[i].k and len(excl) > 0:
                    short.append(j)  # seen items ate the candidates: search deeper
            if short:  # pass 2, only for users whose seen items filled pass 1
                k2 = max(reqs[idx[j]].k + len(seen[idx[j]]) for j in short) + self.cfg.overfetch
                scores2, ids2 = mv.search(q[short], k2)
                for r, j in enumerate(short):
                    i = idx[j]
                    results[i] = top_k(ids2[r], scores2[r], reqs[i].k, seen[i])
            tc = time.perf_counter()
            enc += tb - ta
            ret += tc - tb  # retrieve + filter of the personalised rows
        out = []
        for i, r in enumerate(reqs):
            mv = models.get(r.variant, models["control"])
            if fallback[i] is not None:
                results[i] = popular_k(mv, r.k, seen[i] if r.exclude_seen else set())
                self.m.fallbacks.labels(fallback[i]).inc()
            # model_construct: the values are built here, validating them again costs ~7 % of the worker's CPU
            out.append(RecommendResponse.model_construct(
                items=[Item.model_construct(item_id=it, title=mv.title(it), score=round(s, 6)) for it, s in results[i]],
                model_version=mv.tag, variant=r.variant, request_id=new_request_id(), fallback=fallback[i],
                timings_ms=None))
        t4 = time.perf_counter()
        stage = {"features": t1 - t0, "encode": enc, "retrieve": ret, "filter": max(0.0, (t4 - t1) - enc - ret)}
        for name, sec in stage.items():
            self.m.stage.labels(name).observe(sec)
        self.m.batch.observe(n)
        timings = {k: round(v * 1000, 3) for k, v in stage.items()}
        timings["total"] = round((t4 - t0) * 1000, 3)
        timings["batch_size"] = float(n)
        for r, resp in zip(reqs, out, strict=True):
            if r.timings:
                resp.timings_ms = timings
            self._log_impression(r, resp)
        return out

    def _log_impression(self, req: RecommendRequest, resp: RecommendResponse) -> None:
        if self.impressions is None:
            return
        ev = Impression(request_id=resp.request_id, user_id=req.user_id,
                             items=[it.item_id for it in resp.items], scores=[it.score for it in resp.items],
                             model_version=resp.model_version, variant=resp.variant, fallback=resp.fallback)
        self.impressions.log(key_of(ev), encode(ev))

    def similar_items(self, req: SimilarItemsRequest) -> SimilarItemsResponse:
        mv = self._version(req.variant) if req.variant in self.status.models else self._version("control")
        found = mv.similar(req.item_id, req.k)
        if found is None:
            raise UnknownItem(f"item_id {req.item_id} is not in the catalogue of model {mv.tag}")
        return SimilarItemsResponse(item_id=req.item_id, model_version=mv.tag, variant=req.variant,
                                    request_id=new_request_id(),
                                    items=[Item(item_id=i, title=mv.title(i), score=round(s, 6)) for i, s in found])
