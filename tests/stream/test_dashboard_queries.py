"""Every panel of the streaming dashboard parses and returns data from a real Prometheus's HTTP API
while a running stream processor (real Kafka, Redis, Feast) applies clicks and dead-letters bad
messages (the names are checked against the live scrape in test_metric_names.py)."""

from __future__ import annotations

import json
import threading

import pytest

from minirec.events import Interaction, encode, key_of
from minirec.infra.process import InfraError, free_port
from minirec.promnames import dashboard_exprs
from minirec.settings import REPO_ROOT
from tests.conftest import service_unavailable
from tests.monitoring.prom import isolated_prometheus, query, wait_for_data
from tests.stream.conftest import InProcess, stream_config

pytestmark = pytest.mark.slow
DASHBOARD = REPO_ROOT / "monitoring" / "grafana" / "dashboards" / "streaming.json"


def test_every_streaming_panel_returns_data_from_prometheus(kafka_broker, topics, feast_world, tmp_path):
    from kafka import KafkaProducer

    proc = InProcess(stream_config(kafka_broker, topics, feast_world, tmp_path / "lake"))
    port = free_port()
    proc.app.metrics.serve(port)
    prom = isolated_prometheus(tmp_path / "prom", STREAM_SCRAPE=f"127.0.0.1:{port}")
    stop = threading.Event()

    def traffic() -> None:  # a click and a malformed message every 0.5 s until the panels have data
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

    sender = threading.Thread(target=traffic, daemon=True)
    try:
        try:
            prom.start()
        except InfraError as exc:
            service_unavailable("prometheus", exc)
        sender.start()
        exprs = dashboard_exprs(json.loads(DASHBOARD.read_text()))
        empty = wait_for_data(f"http://127.0.0.1:{prom.ports[0]}", exprs, timeout_s=120)
        assert not empty, f"panels without data after 120 s of traffic: {empty}"
        for e in exprs:
            assert query(f"http://127.0.0.1:{prom.ports[0]}", e)["status"] == "success", e
    finally:
        stop.set()
        sender.join(timeout=10)
        prom.stop()
        proc.stop()
