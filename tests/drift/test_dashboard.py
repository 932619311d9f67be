"""The drift dashboard and the drift alert rules against a live drift process and a real Prometheus:
every drift metric name they use is in a live scrape, and every panel's PromQL parses and returns data
from Prometheus's HTTP API after the job compared windows (no-drift, then a new-user influx)."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest
import yaml

from minirec.infra.process import InfraError, free_port
from minirec.infra.prometheus import RULES_DIR, prometheus_server
from minirec.promnames import dashboard_exprs, rule_exprs, scraped_names, used_names
from minirec.settings import REPO_ROOT
from monitoring.drift.server import serve
from tests.conftest import service_unavailable

DASHBOARD = REPO_ROOT / "monitoring" / "grafana" / "dashboards" / "drift.json"


def panel_exprs() -> list[str]:
    return dashboard_exprs(json.loads(DASHBOARD.read_text()))


def drift_rules() -> list[str]:
    return rule_exprs(yaml.safe_load((RULES_DIR / "minirec.yml").read_text()), "drift")


def query(base: str, promql: str) -> dict:
    url = f"{base}/api/v1/query?query={urllib.parse.quote(promql)}"
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


@pytest.fixture
def live(study, lake_job, tmp_path):
    none, _ = study.windows("none", 3, stream=61)
    drift, _ = study.windows("new_users", 3, change_at=0, stream=62)
    job, metrics = lake_job(none + drift)
    assert len(job.run_once()) == 6
    port = free_port()
    httpd = serve("127.0.0.1", port, metrics.registry, job.trigger)
    prom = prometheus_server(tmp_path / "prom", "127.0.0.1", free_port(), values={
        "DRIFT_SCRAPE": f"127.0.0.1:{port}", "RECOMMENDER_SCRAPE": f"127.0.0.1:{free_port()}",
        "STREAM_SCRAPE": f"127.0.0.1:{free_port()}", "ALERTMANAGER_TARGET": f"127.0.0.1:{free_port()}",
        "ASSIGNMENT_SCRAPE": f"127.0.0.1:{free_port()}"})
    try:
        prom.start()
    except InfraError as exc:
        httpd.shutdown()
        service_unavailable("prometheus", exc)
    yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{prom.ports[0]}"
    prom.stop()
    httpd.shutdown()


def test_dashboard_and_rules_use_live_names_and_every_panel_returns_data(live):
    drift_url, prom = live
    names = scraped_names(urllib.request.urlopen(f"{drift_url}/metrics", timeout=5).read().decode())
    used = used_names(panel_exprs() + drift_rules(), ["drift_"])
    assert used and used <= names, f"not in the live scrape: {sorted(used - names)}"
    deadline = time.monotonic() + 60  # two scrapes at 5 s are enough for increase(); the rest is load
    empty = panel_exprs()
    while time.monotonic() < deadline and empty:
        empty = [e for e in panel_exprs() if not query(prom, e)["data"]["result"]]
        time.sleep(2)
    assert not empty, f"panels without data after 60 s: {empty}"
    for e in panel_exprs() + drift_rules():
        assert query(prom, e)["status"] == "success", e
    flag = query(prom, "drift_dataset_drift")["data"]["result"]
    assert flag and flag[0]["value"][1] == "1"  # the last window (new users) drifted
