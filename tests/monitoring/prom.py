"""Helpers for tests that run a real Prometheus: an instance whose every scrape target is given
(the others point at free ports, so a developer's stack on the default ports is never scraped),
instant queries, the targets page, and waiting until every panel expression returns data."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from minirec.infra.process import InfraError, Server, free_port
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


@contextmanager
def scraping_during(home: Path, traffic: Callable[[threading.Event], None], **targets: str) -> Iterator[str]:
    """A Prometheus scraping `targets` while `traffic(stop)` runs on a thread; yields its base URL.
    Skips (locally) or fails (CI) when Prometheus cannot start."""
    from tests.conftest import service_unavailable

    prom = isolated_prometheus(home, **targets)
    stop = threading.Event()
    sender = threading.Thread(target=traffic, args=(stop,), daemon=True)
    try:
        try:
            prom.start()
        except InfraError as exc:
            service_unavailable("prometheus", exc)
        sender.start()
        yield f"http://127.0.0.1:{prom.ports[0]}"
    finally:
        stop.set()
        if sender.is_alive():
            sender.join(timeout=10)
        prom.stop()


def assert_panels_answer(base: str, exprs: list[str], may_be_empty: set[str] = frozenset(),
                         timeout_s: float = 120.0) -> None:
    """Every expression parses; all but `may_be_empty` return data within the timeout."""
    empty = wait_for_data(base, [e for e in exprs if e not in may_be_empty], timeout_s=timeout_s)
    assert not empty, f"panels without data after {timeout_s:.0f} s of traffic: {empty}"
    for e in exprs:
        assert query(base, e)["status"] == "success", e
