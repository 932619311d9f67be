"""The request pipeline, independent of BentoML (the `Engine` of engine.py mixes it in).

    recommend(requests)                      one call = one batch (1 with batching off)
      features  one Redis round trip: HMGET of every user's Feast hash + their seen-set
      encode    user tower on the personalised users      (B, d+1)
      retrieve  FAISS top-K' for the whole batch, K' = D + overfetch, then drop -1, seen and
                duplicate ids; users left with fewer than D get a second, deeper search
                (K' = D + |seen| + overfetch): HNSW cost grows with K', heavy users are few;
                D = k, or max(k, 100) when the bundle has a ranker
      rank      the bundle's LightGBM ranker reorders each user's 100 candidates, one call per
                batch and model version (minirec.rank); its score is the item's score
      filter    popularity lists, response objects, impression events

    cold user (no online row)        -> popularity list, fallback="cold_start"
    malformed row (one user)         -> popularity list for that user only, fallback="bad_features"
                                        (undecodable value, out-of-range bucket, negative count ...);
                                        the rest of the batch is served as usual, no breaker trip
    Redis unreachable / timed out    -> popularity list for the batch, fallback="online_store_unavailable",
                                        exclude_seen_honoured=false; the breaker skips Redis for 0.5 s
    model not loaded                 -> ModelNotReady (the API answers 503; readiness is false)
    ranker raises (bad bundle, bug)  -> retrieval order for the group, ranker_fallback=true,
                                        recommender_ranker_failures_total + 1; never a 5xx

What the mixin reads from its host: `cfg` (EngineConfig), `m` (metrics), `status.models`
(variant -> ModelVersion), `features` (OnlineFeatures or None), `impressions` (ImpressionLog or
None) and the breaker deadline `_redis_down_until` (time.monotonic seconds).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from minirec.events import Impression, encode, key_of
from services.recommender.features import BadRow
from services.recommender.retrieval import ModelVersion, popular_k, row_problem, top_k
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
class Online:
    """What the online store gave one batch, per user (index = position in the batch)."""

    rows: list[dict | None]  # feature dict of a personalised user, None when served a fallback
    seen: list[set[int]]  # items to exclude (seen-set + online history); empty when unreadable
    fallback: list[str | None]  # None | cold_start | bad_features | online_store_unavailable
    seen_read: list[bool]  # False when the seen-set could not be read (exclude_seen not honoured)
    ranker_fallback: list[bool] = None  # True when the ranker failed and retrieval order was served

    def __post_init__(self) -> None:
        if self.ranker_fallback is None:
            self.ranker_fallback = [False] * len(self.rows)

    @classmethod
    def unavailable(cls, n: int) -> Online:
        return cls(rows=[None] * n, seen=[set() for _ in range(n)], fallback=["online_store_unavailable"] * n,
                   seen_read=[False] * n)


def encode_isolated(mv: ModelVersion, rows: list[dict], user_ids: list[int]) -> tuple[Any, set[int]]:
    """(B,) rows -> query vectors of the rows that encode, and the positions that did not.

    The batch is encoded at once; only if that raises is each row encoded alone, so one row the
    checks missed costs its own user a fallback, never the batch."""
    try:
        return mv.user_vectors(rows, user_ids), set()
    except Exception as exc:
        log.warning("batch encode failed (%s: %s); encoding its %d rows one by one", type(exc).__name__, exc,
                    len(rows))
    import numpy as np

    qs, failed = [], set()
    for j, (row, uid) in enumerate(zip(rows, user_ids, strict=True)):
        try:
            qs.append(mv.user_vectors([row], [uid]))
        except Exception as exc:
            log.warning("user %s: online row not encodable (%s: %s)", uid, type(exc).__name__, exc)
            failed.add(j)
    return (np.concatenate(qs) if qs else np.zeros((0, 0), dtype=np.float32)), failed


class RequestPipeline:
    """recommend / similar_items over the host's loaded models and online store."""

    def _version(self, variant: str) -> ModelVersion:
        mv = self.status.models.get(variant)
        if mv is None:
            raise ModelNotReady(self.status.model_error or "model not loaded yet")
        return mv

    def _read_online(self, reqs: list[RecommendRequest]) -> Online:
        """Rows, seen-sets and per-user fallback reasons; an outage degrades the whole batch, a bad
        row only its own user (neither a failure nor a breaker trip)."""
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        n = len(reqs)
        if self.features is None or time.monotonic() < self._redis_down_until:
            return Online.unavailable(n)
        try:
            raw_rows, raw_seen = self.features.read([r.user_id for r in reqs])
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.debug("online store unavailable: %s", exc)
            self._redis_down_until = time.monotonic() + 0.5  # retry the store at most twice a second
            self.m.online_store_up.set(0)
            return Online.unavailable(n)
        self.m.online_store_up.set(1)
        out = Online(rows=[None] * n, seen=[set() for _ in range(n)], fallback=[None] * n,
                     seen_read=[s is not None for s in raw_seen])
        for i, (row, s) in enumerate(zip(raw_rows, raw_seen, strict=True)):
            out.seen[i] = s or set()
            problem = row.reason if isinstance(row, BadRow) else row_problem(row) if row is not None else None
            if problem is not None:
                log.warning("user %s: bad online features (%s); serving the popularity list", reqs[i].user_id,
                            problem)
                out.fallback[i] = "bad_features"
            elif row is None:
                out.fallback[i] = "cold_start"
            else:
                out.rows[i] = row
                if row.get("last_items"):  # the online history is seen too, even before the seen-set has
                    out.seen[i].update(int(x) for x in row["last_items"])  # caught up
        return out

    def _retrieve(self, mv: ModelVersion, idx: list[int], reqs: list[RecommendRequest], online: Online,
                  results: list[list[tuple]]) -> tuple[float, float]:
        """Encode + two-pass search (+ the ranker) for the rows `idx` of one model version;
        returns (encode seconds, rank seconds)."""
        ta = time.perf_counter()
        q, failed = encode_isolated(mv, [online.rows[i] for i in idx], [reqs[i].user_id for i in idx])
        for j in failed:  # rows the checks did not catch but the tower refused: that user only
            online.fallback[idx[j]] = "bad_features"
        idx = [i for j, i in enumerate(idx) if j not in failed]
        enc = time.perf_counter() - ta
        if not idx:
            return enc, 0.0
        seen = online.seen
        # k, or the ranker's 100 candidates for a user it reorders: a user outside its segments needs only
        # k (searching 100 deep for them cost a deeper HNSW search, more second passes and longer lists)
        keep = mv.reordered([online.rows[i] for i in idx])  # (len(idx),) bool, decided once per batch
        depth = {i: max(reqs[i].k, d) for i, d in zip(idx, mv.depths(keep), strict=True)}
        # pass 1: K' = depth + overfetch for the whole group (cheap: HNSW cost grows with K')
        scores, ids = mv.search(q, max(depth.values()) + self.cfg.overfetch)
        short = []
        for j, i in enumerate(idx):
            excl = seen[i] if reqs[i].exclude_seen else set()
            results[i] = top_k(ids[j], scores[j], depth[i], excl)
            if len(results[i]) < depth[i] and len(excl) > 0:
                short.append(j)  # seen items ate the candidates: search deeper
        if short:  # pass 2, only for users whose seen items filled pass 1
            k2 = max(depth[idx[j]] + len(seen[idx[j]]) for j in short) + self.cfg.overfetch
            scores2, ids2 = mv.search(q[short], k2)
            for r, j in enumerate(short):
                i = idx[j]
                results[i] = top_k(ids2[r], scores2[r], depth[i], seen[i])
        tr = time.perf_counter()
        if mv.ranker is not None:
            self._rank(mv, idx, reqs, online, results, keep)
        return enc, time.perf_counter() - tr

    def _rank(self, mv: ModelVersion, idx: list[int], reqs: list[RecommendRequest], online: Online,
              results: list[list[tuple]], keep: np.ndarray) -> None:
        """One ranker call for the group; on any failure the retrieval order is served, flagged and counted."""
        try:
            ranked = mv.rank([online.rows[i] for i in idx], [results[i] for i in idx], keep)
        except Exception as exc:
            log.warning("ranker failed for %d users (%s: %s); serving retrieval order", len(idx),
                        type(exc).__name__, exc)
            self.m.ranker_failures.inc()
            ranked = [results[i] for i in idx]
            for i in idx:
                online.ranker_fallback[i] = True
        for i, r in zip(idx, ranked, strict=True):
            results[i] = r[:reqs[i].k]

    def recommend(self, reqs: list[RecommendRequest]) -> list[RecommendResponse]:
        t0 = time.perf_counter()
        models = self.status.models  # one snapshot per batch: a swap never splits a batch
        if "control" not in models:
            raise ModelNotReady(self.status.model_error or "model not loaded yet")
        n = len(reqs)
        online = self._read_online(reqs)
        t1 = time.perf_counter()
        results: list[list[tuple]] = [[] for _ in range(n)]  # (item id, score[, retrieval score]) per user
        # group the personalised requests by model version: one encode + one search per version
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(reqs):
            if online.fallback[i] is None:
                groups.setdefault(models.get(r.variant, models["control"]).tag, []).append(i)
        enc = ret = rank = 0.0
        for tag, idx in groups.items():
            ta = time.perf_counter()
            e, rk = self._retrieve(next(m for m in models.values() if m.tag == tag), idx, reqs, online, results)
            enc += e
            rank += rk
            ret += time.perf_counter() - ta - e - rk  # retrieve + filter of the personalised rows
        out = []
        for i, r in enumerate(reqs):
            mv = models.get(r.variant, models["control"])
            if online.fallback[i] is not None:
                results[i] = popular_k(mv, r.k, online.seen[i] if r.exclude_seen else set())
                self.m.fallbacks.labels(online.fallback[i]).inc()
            # model_construct: the values are built here, validating them again costs ~7 % of the worker's CPU
            out.append(RecommendResponse.model_construct(
                items=[Item.model_construct(item_id=t[0], title=mv.title(t[0]), score=round(t[1], 6),
                                            retrieval_score=round(t[2], 6) if len(t) > 2 else None)
                       for t in results[i]],
                model_version=mv.tag, variant=r.variant, request_id=new_request_id(), fallback=online.fallback[i],
                exclude_seen_honoured=online.seen_read[i] or not r.exclude_seen,
                ranker_fallback=online.ranker_fallback[i], timings_ms=None))
        t4 = time.perf_counter()
        stage = {"features": t1 - t0, "encode": enc, "retrieve": ret, "rank": rank,
                 "filter": max(0.0, (t4 - t1) - enc - ret - rank)}
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
