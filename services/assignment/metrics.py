"""Prometheus metrics of the assignment service (one registry per app, served at GET /metrics).

    assignment_requests_total{experiment,outcome}   outcome: a reason (assigned, holdout, outside_layer,
                                                    audience_mismatch, audience_unknown, outside_coverage)
                                                    or an error code (unknown_experiment, ...); the
                                                    experiment label is "-" for requests that name none
                                                    we know (so a client cannot grow the label set)
    assignment_request_seconds                      POST /assign wall time inside the app
    assignment_variant_assignments_total{experiment,variant}  users put in an arm (one Exposure each): exposures
                                                    per arm for the experiments dashboard (children created
                                                    at start for every variant in the file)
    assignment_exposures_sent_total                 Exposure events acknowledged by Kafka
    assignment_exposures_dropped_total{reason}      buffer_full | send_failed | delivery_failed | closed
    assignment_audience_lookups_total{result}       returning | new | unavailable (Redis timed out or down)
    assignment_experiment_info{experiment,layer,status}  1 per experiment in the file (status at scrape time)
"""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from minirec.ab.config import ExperimentsConfig

LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


class AssignmentMetrics:
    def __init__(self, cfg: ExperimentsConfig, registry: CollectorRegistry | None = None):
        self.registry = r = registry or CollectorRegistry()
        self.cfg = cfg
        self.requests = Counter("assignment_requests", "POST /assign answers by experiment and outcome",
                                ["experiment", "outcome"], registry=r)
        self.seconds = Histogram("assignment_request_seconds", "POST /assign wall time in the app",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.assigned = Counter("assignment_variant_assignments", "users put in an arm, by experiment and variant",
                                ["experiment", "variant"], registry=r)
        for e in cfg.experiments.values():
            for v in e.variants:
                self.assigned.labels(e.name, v)
        self.sent = Counter("assignment_exposures_sent", "Exposure events acknowledged by Kafka", registry=r)
        self.dropped = Counter("assignment_exposures_dropped", "Exposure events lost", ["reason"], registry=r)
        self.audience = Counter("assignment_audience_lookups", "returning-user lookups in Redis", ["result"],
                                registry=r)
        self.info = Gauge("assignment_experiment_info", "experiments in the file", ["experiment", "layer", "status"],
                          registry=r)

    def label(self, experiment: str) -> str:
        return experiment if experiment in self.cfg.experiments else "-"

    def refresh_info(self, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        self.info.clear()
        for e in self.cfg.experiments.values():
            self.info.labels(e.name, e.layer or "-", e.status(now)).set(1)
