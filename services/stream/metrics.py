"""Prometheus metrics of the stream processor (served on STREAM_METRICS_PORT at /metrics).

    stream_events_total{topic,outcome}      outcome: applied | duplicate (event_id already in the lake)
                                            | deadletter
    stream_deadlettered_total{reason}       bad_json | schema | unknown_id
    stream_consumer_lag{topic,partition}    high watermark - consumer position (messages)
    stream_freshness_seconds                interactions: event_time -> the batch's Feast push returned (first processing only)
                                            (visible to the recommender); wall clock, so it only means
                                            something for live events (a replay of old events lands in +Inf)
    stream_batch_seconds                    one batch: decode, lake, online, dead letters, commit
    stream_sink_errors_total{sink}          failed attempts per sink: redis | lake | kafka; each one is
                                            retried with backoff and nothing is committed meanwhile
    stream_committed_total                  batches committed
    stream_consumer_restarts_total          consumers replaced because the group membership was not
                                            stable for STREAM_GROUP_STUCK_S (watchdog.py)
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

FRESHNESS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)


class StreamMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter("stream_events", "events by topic and outcome", ["topic", "outcome"], registry=r)
        self.deadlettered = Counter("stream_deadlettered", "messages sent to the dead-letter topic",
                                    ["reason"], registry=r)
        self.lag = Gauge("stream_consumer_lag", "high watermark minus position", ["topic", "partition"],
                         registry=r)
        self.freshness = Histogram("stream_freshness_seconds", "event_time to visible in the online store",
                                   buckets=FRESHNESS_BUCKETS, registry=r)
        self.batch_seconds = Histogram("stream_batch_seconds", "wall time of one batch", registry=r,
                                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
        self.sink_errors = Counter("stream_sink_errors", "failed write attempts (retried)", ["sink"], registry=r)
        self.committed = Counter("stream_committed", "batches committed", registry=r)
        self.restarts = Counter("stream_consumer_restarts", "consumers replaced by the group watchdog", registry=r)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)
