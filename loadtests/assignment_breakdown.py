"""Where the assignment service's CPU goes, part by part, in-process (`make bench-assignment ARGS=--breakdown`).

    POST /assign = server stack (the floor's µs/request, measured by the benchmark)
                 + parse (AssignRequest from the JSON body)  + decision (experiment, hashes)
                 + Exposure bytes + metrics (two prometheus-client updates)
                 + exposure delivery: EventLog.log, its sender thread and kafka-python's I/O
                   thread until the broker acknowledged (real Kafka), per exposure

Each part runs N times on the same bodies as the benchmark; its cost is the process CPU time
(time.process_time: every thread of this process, so the producer's threads count) divided by N.
The sum over the parts bounds what the service can reach against the floor on one core:
    ratio bound = floor µs / (floor µs + parts µs)
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any


def cpu_us(fn, n: int) -> float:
    """Process CPU µs per call of fn (all threads), after a short warm-up."""
    for _ in range(min(500, n)):
        fn()
    c0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - c0) / n * 1e6


def breakdown(bootstrap: str, topic: str, bodies: list[bytes], n: int = 20_000,
              producer_options: dict[str, Any] | None = None) -> dict[str, float]:
    """CPU µs per request of each part of POST /assign (see the module doc)."""
    import itertools

    from minirec.ab.assign import Assigner
    from minirec.ab.config import load
    from minirec.eventlog import EventLog
    from minirec.settings import get_settings
    from services.assignment.exposures import ExposureEncoder
    from services.assignment.metrics import AssignmentMetrics
    from services.assignment.schemas import AssignRequest

    cfg = load(get_settings().assignment_experiments_path)
    assigner, metrics, enc = Assigner(cfg), AssignmentMetrics(cfg), ExposureEncoder()
    now = datetime.now(UTC)
    cyc = itertools.cycle(bodies)
    reqs = [AssignRequest.model_validate_json(b) for b in bodies[:2000]]
    rc = itertools.cycle(reqs)

    def decision():
        r = next(rc)
        e = assigner.experiment(r.experiment, now)
        if not assigner.needs_audience(e, r.user_id):
            return assigner.assign(r.experiment, r.user_id, now, returning=lambda _u: None, checked=e)
        return None

    child = metrics.requests.labels("ranker_v1", "assigned")

    def metric_updates():
        child.inc()
        metrics.seconds.observe(0.0001)

    out = {"parse_us": cpu_us(lambda: AssignRequest.model_validate_json(next(cyc)), n),
           "decision_us": cpu_us(decision, n),
           "exposure_bytes_us": cpu_us(lambda: enc.encode(196, "ranker_v1", "treatment", datetime.now(UTC)), n),
           "metrics_us": cpu_us(metric_updates, n)}
    assigned = sum(1 for _ in range(len(reqs)) if (a := decision()) is not None and a.in_experiment)
    out["exposure_share"] = assigned / len(reqs)  # share of requests that log an Exposure

    log = EventLog(bootstrap, topic, buffer=n + 1000, name="breakdown", producer_options=producer_options)
    deadline = time.monotonic() + 30
    while not log.connected and time.monotonic() < deadline:
        time.sleep(0.1)
    key, value = enc.encode(196, "ranker_v1", "treatment", now)
    for _ in range(500):  # warm-up: metadata, partitions, first batch
        log.log(key, value)
    log.flush(15)
    c0 = time.process_time()
    for _ in range(n):
        log.log(key, value)
    log.flush(60)
    out["exposure_delivery_us"] = (time.process_time() - c0) / n * 1e6
    out["exposures_sent"], out["exposures_dropped"] = log.sent, sum(log.dropped.values())
    log.close(5)
    out["parts_us_per_request"] = (out["parse_us"] + out["decision_us"] + out["metrics_us"]
                                   + out["exposure_share"] * (out["exposure_bytes_us"] + out["exposure_delivery_us"]))
    return out
