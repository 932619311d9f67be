"""Helpers for tests that run a real Prometheus: an instance whose every scrape target is given
(the others point at free ports, so a developer's stack on the default ports is never scraped),
instant queries, the targets page, and waiting until every panel expression returns data."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path

from minirec.infra.process import Server, free_port
from minirec.infra.prometheus import prometheus_server

SCRAPES = ("RECOMMENDER_SCRAPE", "STREAM_SCRAPE", "ASSIGNMENT_SCRAPE", "DRIFT_SCRAPE", "ALERTMANAGER_TARGET",
           "REDIS_EXPORTER_SCRAPE", "NODE_EXPORTER_SCRAPE", "KAFKA_JMX_SCRAPE")


def isolated_prometheus(home: Path, **targets: str) -> Server:
    """`targets`: placeholder -> host:port, e.g. REDIS_EXPORTER_SCRAPE="127.0.0.1:41234"."""
    values = {name: f"127.0.0.1:{free_port()}" for name in SCRAPES}
    return prometheus_server(home, "127.0.0.1", free_port(), values={**values, **targets})


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - loopback test servers
        return json.load(r)


def query(base: str, promql: str) -> dict:
    """The whole /api/v1/query answer (status, data); a PromQL parse error comes back as HTTP 400."""
    try:
        return get_json(f"{base}/api/v1/query?query={urllib.parse.quote(promql)}")
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def target_health(base: str) -> dict[str, str]:
    """job -> health ("up", "down", "unknown") of the active targets."""
    active = get_json(f"{base}/api/v1/targets")["data"]["activeTargets"]
    return {t["labels"]["job"]: t["health"] for t in active}


def wait_for_data(base: str, exprs: list[str], timeout_s: float = 90.0) -> list[str]:
    """Query each expression until all return a non-empty result; returns those still empty."""
    deadline = time.monotonic() + timeout_s
    empty = list(exprs)
    while empty and time.monotonic() < deadline:
        empty = [e for e in exprs if not query(base, e).get("data", {}).get("result")]
        if empty:
            time.sleep(2)
    return empty
