"""Recommender metrics (prometheus-client), served on BentoML's `/metrics`.

Created on first use, inside the worker: BentoML sets
PROMETHEUS_MULTIPROC_DIR after importing the service module, and metrics made
before that would never reach `/metrics`.

    recommender_request_seconds{endpoint}           wall time in the worker, per endpoint
    recommender_stage_seconds{stage}                features | encode | retrieve | rank | filter, per batch
    recommender_batch_users                         users per pipeline call (1 with batching off)
    recommender_fallbacks_total{reason}             cold_start | bad_features | online_store_unavailable
    recommender_ranker_failures_total               batches (per model version) served in retrieval order: ranker failed
    recommender_online_store_up                     1 when the last online-store read (or probe) answered, else 0
    recommender_impressions_sent_total              acknowledged by Kafka
    recommender_impressions_dropped_total{reason}   buffer_full | delivery_failed | send_failed | shutdown
    recommender_impression_queue_depth              events waiting in the buffer (sampled every ~0.2 s)
    recommender_batch_shed_total                    batcher 503s re-served unbatched
    recommender_model_info{variant,model_version}   1 for the version each arm serves
BentoML adds bentoml_service_request_* and bentoml_service_adaptive_batch_size.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from types import SimpleNamespace

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1,
                   0.2, 0.5, 1.0, 2.0, 5.0)
STAGES = ("features", "encode", "retrieve", "rank", "filter")
_lock = threading.Lock()


@lru_cache(maxsize=1)
def get() -> SimpleNamespace:
    from prometheus_client import Counter, Gauge, Histogram

    with _lock:
        return SimpleNamespace(
            request=Histogram("recommender_request_seconds", "request wall time in the worker",
                              ["endpoint"], buckets=LATENCY_BUCKETS),
            stage=Histogram("recommender_stage_seconds", "pipeline stage time per batch", ["stage"],
                            buckets=LATENCY_BUCKETS),
            batch=Histogram("recommender_batch_users", "users per pipeline call",
                            buckets=(1, 2, 4, 8, 16, 32, 64, 128)),
            fallbacks=Counter("recommender_fallbacks_total", "popularity fallbacks served", ["reason"]),
            ranker_failures=Counter("recommender_ranker_failures_total",
                                    "ranker calls that failed (retrieval order served instead)"),
            sent=Counter("recommender_impressions_sent_total", "impression events acknowledged by Kafka"),
            dropped=Counter("recommender_impressions_dropped_total", "impression events lost", ["reason"]),
            queue_depth=Gauge("recommender_impression_queue_depth", "impression events waiting in the buffer",
                              multiprocess_mode="livesum"),
            shed=Counter("recommender_batch_shed_total", "batcher 503s re-served without batching"),
            online_store_up=Gauge("recommender_online_store_up", "1 when the online store answered the last read",
                                  multiprocess_mode="livemin"),
            model_info=Gauge("recommender_model_info", "model version each variant serves",
                             ["variant", "model_version"], multiprocess_mode="liveall"),
        )
