"""The experiments dashboard against live processes and a real Prometheus: the assignment service
(`python -m services.assignment` on the session's Kafka and Redis) after real POST /assign traffic, and
the drift job's per-arm lake counters after it compared windows whose lists two arms served. Every
metric name the dashboard uses is in a live scrape; every panel parses and returns data through
Prometheus's HTTP API; the CTR per arm it shows is the one computed from the lake."""

from __future__ import annotations

import json
import math
import urllib.request

import httpx
import pytest

from minirec.infra.process import InfraError, free_port
from minirec.promnames import dashboard_exprs, scraped_names, used_names
from minirec.settings import REPO_ROOT
from monitoring.drift.job import per_arm
from monitoring.drift.server import serve
from tests.assignment.conftest import start_service
from tests.conftest import service_unavailable
from tests.monitoring.prom import isolated_prometheus, query, wait_for_data

pytestmark = [pytest.mark.infra, pytest.mark.slow]
DASHBOARD = REPO_ROOT / "monitoring" / "grafana" / "dashboards" / "experiments.json"


def panel_exprs() -> list[str]:
    return dashboard_exprs(json.loads(DASHBOARD.read_text()))


def scrape(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:  # noqa: S310 - loopback
        return r.read().decode()


@pytest.fixture
def live(study, lake_job, kafka_broker, redis_server, tmp_path):
    from minirec.infra.kafka import create_topics

    none, _ = study.windows("none", 3, stream=71)
    job, metrics = lake_job(none)
    reports = job.run_once()
    assert [r.status for r in reports] == ["compared"] * 3
    drift_port = free_port()
    httpd = serve("127.0.0.1", drift_port, metrics.registry, job.trigger)
    topic = "exposures-dash"
    create_topics(kafka_broker.bootstrap, [topic], partitions=3)
    try:
        svc = start_service(tmp_path / "assignment", kafka_broker.bootstrap, redis_server.port, topic=topic)
    except InfraError as exc:
        httpd.shutdown()
        service_unavailable("assignment service", exc)
    prom = isolated_prometheus(tmp_path / "prom", DRIFT_SCRAPE=f"127.0.0.1:{drift_port}",
                               ASSIGNMENT_SCRAPE=svc.url.removeprefix("http://"))
    try:
        prom.start()
    except InfraError as exc:
        svc.stop()
        httpd.shutdown()
        service_unavailable("prometheus", exc)
    yield {"drift": f"http://127.0.0.1:{drift_port}", "assignment": svc.url,
           "prometheus": f"http://127.0.0.1:{prom.ports[0]}", "windows": none, "reports": reports}
    prom.stop()
    svc.stop()
    httpd.shutdown()


def drive_assignments(url: str, users: range) -> int:
    """POST /assign for each user in ranker_v1; returns how many were put in an arm."""
    n = 0
    with httpx.Client(timeout=5) as client:
        for uid in users:
            r = client.post(f"{url}/assign", json={"user_id": uid, "experiment": "ranker_v1"})
            assert r.status_code == 200, r.text
            n += r.json()["in_experiment"]
    return n


def test_every_panel_uses_live_names_and_returns_data(live):
    prom = live["prometheus"]
    assigned = drive_assignments(live["assignment"], range(1, 401))
    assert assigned > 300  # 90 % layer range x 95 % outside the holdout of 400 users

    names = scraped_names(scrape(live["assignment"])) | scraped_names(scrape(live["drift"]))
    used = used_names(panel_exprs(), ["assignment_", "drift_"])
    assert {"assignment_variant_assignments_total", "drift_variant_list_clicks_total"} <= used
    assert used <= names, f"not in the live scrapes: {sorted(used - names)}"

    # more traffic once Prometheus has a first sample, so rate()/increase() see it
    empty = wait_for_data(prom, ['assignment_variant_assignments_total{variant="treatment"}'], timeout_s=60)
    assert not empty
    drive_assignments(live["assignment"], range(401, 801))
    empty = wait_for_data(prom, panel_exprs(), timeout_s=90)
    assert not empty, f"panels without data after 90 s: {empty}"
    for e in panel_exprs():
        assert query(prom, e)["status"] == "success", e

    # exposures per arm: both arms of ranker_v1 received users, roughly half each
    share = {r["metric"]["variant"]: float(r["value"][1]) for r in query(prom, panel_exprs()[1])["data"]["result"]
             if r["metric"]["experiment"] == "ranker_v1"}
    assert set(share) == {"control", "treatment"} and all(0.35 < s < 0.65 for s in share.values()), share


def test_ctr_per_arm_panel_equals_the_lake(live):
    """The CTR panel's value per arm is clicks / lists of the compared windows, joined by request_id."""
    expected: dict[str, list[int]] = {}
    for w in live["windows"]:
        arms = w.impressions.assign(variant=["treatment" if j % 2 else "control" for j in range(len(w.impressions))])
        for v, (lists, clicks) in per_arm(arms, w.clicks).items():
            expected.setdefault(v, [0, 0])
            expected[v][0] += lists
            expected[v][1] += clicks
    ctr = panel_exprs()[4]
    assert not wait_for_data(live["prometheus"], [ctr], timeout_s=60)
    shown = {r["metric"]["variant"]: float(r["value"][1]) for r in query(live["prometheus"], ctr)["data"]["result"]}
    assert set(shown) == {"control", "treatment"}
    for v, (lists, clicks) in expected.items():
        assert lists > 0 and math.isclose(shown[v], clicks / lists, rel_tol=1e-9), (v, shown[v], clicks, lists)
