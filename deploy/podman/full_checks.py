"""Host-side checks of `make compose-smoke-full`: the compose services answer on the
host ports, the recommender serves the model model-init trained, the assignment
service gives a variant, and a click sent through the explorer reaches the online
store (Kafka -> stream processor -> the user's seen-set in Redis).

Reads the ports from the environment compose_smoke.sh exported (the same names as
.env). Prints one line per check; exits 1 on the first one that fails.

    python deploy/podman/full_checks.py services   # wait until every app answers
    python deploy/podman/full_checks.py loop       # recommend, assign, click -> Redis
    python deploy/podman/full_checks.py targets    # Prometheus scrapes every job
    python deploy/podman/full_checks.py stream     # interactions the stream processor handled
    python deploy/podman/full_checks.py airflow    # metadatabase, scheduler, DAG processor healthy
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import httpx
import redis

from minirec.features.seen import seen_key

USER = 196  # a MovieLens user with history (the sample payloads' user)
EXPERIMENT = "ranker_v1"


class CheckFailed(Exception):
    pass


def url(port_var: str, path: str) -> str:
    return f"http://127.0.0.1:{os.environ[port_var]}{path}"


def wait_until(what: str, probe, timeout_s: float, every_s: float = 2.0):
    """Call `probe()` until it returns a truthy value or `timeout_s` passes; returns that value."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            got = probe()
            if got:
                return got
        except (httpx.HTTPError, redis.RedisError, OSError) as exc:
            last = exc
        time.sleep(every_s)
    raise CheckFailed(f"{what}: not within {timeout_s:.0f} s (last error: {last})")


def answers(port_var: str, path: str) -> bool:
    return httpx.get(url(port_var, path), timeout=5).status_code == 200


def check_services(timeout_s: float) -> None:
    for name, port_var, path in (("recommender", "RECOMMENDER_PORT", "/readyz"),
                                 ("assignment", "ASSIGNMENT_PORT", "/readyz"),
                                 ("stream", "STREAM_METRICS_PORT", "/metrics"),
                                 ("drift", "DRIFT_METRICS_PORT", "/healthz"),
                                 ("explorer", "EXPLORER_PORT", "/healthz")):
        t0 = time.monotonic()
        wait_until(f"{name} {path}", lambda p=port_var, q=path: answers(p, q), timeout_s)
        print(f"{name:<12}ready ({path} 200 after {time.monotonic() - t0:.0f} s more)")


def check_loop(k: int, timeout_s: float) -> None:
    rec = httpx.post(url("RECOMMENDER_PORT", "/recommend"),
                     json={"user_id": USER, "k": k, "exclude_seen": True}, timeout=30)
    if rec.status_code != 200:
        raise CheckFailed(f"POST /recommend: {rec.status_code} {rec.text[:300]}")
    body = rec.json()
    items = [it["item_id"] for it in body["items"]]
    if len(items) != k or body.get("fallback") is not None:
        raise CheckFailed(f"POST /recommend: {len(items)} items (want {k}), fallback={body.get('fallback')}")
    print(f"recommend   200, {k} items from model {body['model_version']} (fallback none), first {items[:3]}")

    asg = httpx.post(url("ASSIGNMENT_PORT", "/assign"), json={"user_id": USER, "experiment": EXPERIMENT},
                     timeout=10)
    if asg.status_code != 200 or asg.json().get("variant") not in ("control", "treatment"):
        raise CheckFailed(f"POST /assign: {asg.status_code} {asg.text[:300]}")
    variant = asg.json()["variant"]
    print(f"assign      200, user {USER} in {EXPERIMENT} -> {variant}")

    store = redis.Redis(host="127.0.0.1", port=int(os.environ["REDIS_PORT"]))
    key = seen_key(os.environ.get("FEAST_PROJECT", "minirec"), USER)
    item = items[0]
    before = store.scard(key)
    if before == 0 or store.sismember(key, item):
        raise CheckFailed(f"seen-set {key}: {before} items before the click, item {item} already in it")
    click = httpx.post(url("EXPLORER_PORT", "/api/click"), timeout=10,
                       json={"user_id": USER, "item_id": item, "request_id": body["request_id"],
                             "position": 0, "variant": variant})
    if click.status_code != 202 or not click.json().get("queued"):
        raise CheckFailed(f"POST explorer /api/click: {click.status_code} {click.text[:300]}")
    t0 = time.monotonic()
    wait_until(f"item {item} in {key}", lambda: store.sismember(key, item), timeout_s, every_s=0.2)
    print(f"click       202 -> Kafka -> stream -> Redis: {key} holds item {item} after "
          f"{time.monotonic() - t0:.1f} s ({before} -> {store.scard(key)} items)")


def check_targets(jobs: list[str], timeout_s: float) -> None:
    def all_up():
        active = httpx.get(url("PROMETHEUS_PORT", "/api/v1/targets"), timeout=5).json()["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in active}
        check_targets.last = health
        return all(health.get(j) == "up" for j in jobs)

    check_targets.last = {}
    try:
        wait_until("Prometheus targets up", all_up, timeout_s)
    except CheckFailed as exc:
        raise CheckFailed(f"{exc}; health: {check_targets.last}") from None
    print(f"prometheus  targets up: {', '.join(jobs)}")


def stream_events() -> float:
    text = httpx.get(url("STREAM_METRICS_PORT", "/metrics"), timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("stream_events_total{") and 'topic="interactions"' in line)


def check_stream(at_least: float) -> None:
    n = stream_events()
    if n < at_least:
        raise CheckFailed(f"stream processor handled {n:.0f} interactions, want >= {at_least:.0f}")
    print(f"stream      {n:.0f} interactions handled (stream_events_total)")


def check_airflow(timeout_s: float) -> None:
    parts = ("metadatabase", "scheduler", "dag_processor")

    def healthy():
        got = httpx.get(url("AIRFLOW_PORT", "/api/v2/monitor/health"), timeout=5).json()
        check_airflow.last = {p: (got.get(p) or {}).get("status") for p in parts}
        return all(v == "healthy" for v in check_airflow.last.values())

    check_airflow.last = {}
    try:
        wait_until("Airflow health", healthy, timeout_s, every_s=5)
    except CheckFailed as exc:
        raise CheckFailed(f"{exc}; status: {check_airflow.last}") from None
    print(f"airflow     /api/v2/monitor/health: {', '.join(parts)} healthy")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("check", choices=["services", "loop", "targets", "stream", "airflow"])
    ap.add_argument("--timeout", type=float, default=180, help="seconds to wait per check")
    ap.add_argument("--k", type=int, default=10, help="recommendations to ask for")
    ap.add_argument("--jobs", nargs="+", default=["recommender", "stream", "assignment", "drift", "redis",
                                                  "kafka", "node"], help="Prometheus jobs that must be up")
    ap.add_argument("--at-least", type=float, default=1, help="interactions the stream must have handled")
    a = ap.parse_args(argv)
    try:
        if a.check == "services":
            check_services(a.timeout)
        elif a.check == "loop":
            check_loop(a.k, a.timeout)
        elif a.check == "targets":
            check_targets(a.jobs, a.timeout)
        elif a.check == "stream":
            check_stream(a.at_least)
        else:
            check_airflow(a.timeout)
    except CheckFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
