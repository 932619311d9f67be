"""Every panel of the streaming dashboard parses and returns data from a real Prometheus's HTTP API
while a running stream processor (real Kafka, Redis, Feast) applies clicks and dead-letters bad
messages (the names are checked against the live scrape in test_metric_names.py)."""

from __future__ import annotations

import json

import pytest

from minirec.events import Interaction, encode, key_of
from minirec.infra.process import free_port
from minirec.promnames import dashboard_exprs
from minirec.settings import REPO_ROOT
from tests.monitoring.prom import assert_panels_answer, scraping_during
from tests.stream.conftest import InProcess, stream_config

pytestmark = pytest.mark.slow
DASHBOARD = REPO_ROOT / "monitoring" / "grafana" / "dashboards" / "streaming.json"


def test_every_streaming_panel_returns_data_from_prometheus(kafka_broker, topics, feast_world, tmp_path):
    from kafka import KafkaProducer

    proc = InProcess(stream_config(kafka_broker, topics, feast_world, tmp_path / "lake"))
    port = free_port()
    proc.app.metrics.serve(port)

    def traffic(stop) -> None:  # a click and a malformed message every 0.5 s
        prod = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
        i = 0
        while not stop.is_set():
            click = Interaction(user_id=1 + i % 5, item_id=1 + i % 7, action="click")
            prod.send(topics["interactions"], key=key_of(click), value=encode(click))
            prod.send(topics["interactions"], key=b"1", value=b"{not json")
            prod.flush()
            i += 1
            stop.wait(0.5)
        prod.close()

    try:
        with scraping_during(tmp_path / "prom", traffic, STREAM_SCRAPE=f"127.0.0.1:{port}") as base:
            assert_panels_answer(base, dashboard_exprs(json.loads(DASHBOARD.read_text())))
    finally:
        proc.stop()
