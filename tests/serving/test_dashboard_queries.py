"""Every panel of the serving dashboard parses and returns data from a real Prometheus's HTTP API
while a live recommender (`bentoml serve`, the session's Redis and Kafka) answers known and
cold-start users (the names are checked against the live scrape in test_metric_names.py)."""

from __future__ import annotations

import json

import pytest

from minirec.promnames import dashboard_exprs
from minirec.settings import REPO_ROOT
from tests.monitoring.prom import assert_panels_answer, scraping_during

pytestmark = pytest.mark.slow
DASHBOARD = REPO_ROOT / "monitoring" / "grafana" / "dashboards" / "recommender.json"
# no impression is dropped on a healthy service, and the counter has no child before the first drop
# (see LAZY_UNTIL_FIRST_EVENT in test_metric_names.py): this panel parses but stays empty here
EMPTY_WHEN_HEALTHY = {"sum(rate(recommender_impressions_dropped_total[1m]))"}


def test_every_serving_panel_returns_data_from_prometheus(recommender, world, tmp_path):
    uid = int(world.users().sort_values("n").iloc[-1]["user_id"])

    def traffic(stop) -> None:  # a known user and a cold start (popularity fallback) every 0.3 s
        while not stop.is_set():
            recommender.post("/recommend", {"user_id": uid, "k": 5})
            recommender.post("/recommend", {"user_id": 10**9, "k": 5})
            stop.wait(0.3)

    exprs = dashboard_exprs(json.loads(DASHBOARD.read_text()))
    assert EMPTY_WHEN_HEALTHY <= set(exprs)
    with scraping_during(tmp_path / "prom", traffic,
                         RECOMMENDER_SCRAPE=recommender.url.removeprefix("http://")) as base:
        assert_panels_answer(base, exprs, may_be_empty=EMPTY_WHEN_HEALTHY)
