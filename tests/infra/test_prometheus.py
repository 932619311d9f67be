"""Prometheus scrapes itself and reports `up` through its HTTP API."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from minirec.infra.process import InfraError, free_port
from minirec.infra.prometheus import prometheus_server, render_config
from tests.conftest import service_unavailable


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    server = prometheus_server(tmp_path_factory.mktemp("prom"), "127.0.0.1", free_port())
    try:
        server.start()
    except InfraError as exc:
        service_unavailable("prometheus", exc)
    yield f"http://127.0.0.1:{server.ports[0]}"
    server.stop()


def query(base: str, promql: str) -> list:
    with urllib.request.urlopen(f"{base}/api/v1/query?query={promql}", timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success"
    return body["data"]["result"]


def test_scrapes_itself_and_reports_up(prometheus):
    deadline = time.monotonic() + 30
    jobs: dict[str, str] = {}
    while time.monotonic() < deadline:
        jobs = {r["metric"]["job"]: r["value"][1] for r in query(prometheus, "up")}
        if "prometheus" in jobs:
            break
        time.sleep(1)
    assert jobs.get("prometheus") == "1", f"`up` by job after 30 s: {jobs}"
    # the recommender job is configured too (up or not depends on what runs on its port)
    with urllib.request.urlopen(f"{prometheus}/api/v1/targets", timeout=5) as resp:
        targets = json.load(resp)["data"]["activeTargets"]
    assert {t["labels"]["job"] for t in targets} >= {"prometheus", "recommender"}


def test_template_rejects_unknown_placeholder(tmp_path):
    tmpl = tmp_path / "t.yml"
    tmpl.write_text("# ${COMMENTS_ARE_COPIED}\ntargets: ['${MISSING}']\n")
    with pytest.raises(InfraError, match="MISSING"):
        render_config({}, tmpl)
    assert render_config({"MISSING": "h:1"}, tmpl).endswith("targets: ['h:1']\n")
