"""The streaming dashboard and the streaming alert rules use only metric names that a running stream
processor (real Kafka, Redis, Feast) declares on /metrics after it applied an event and dead-lettered one."""

from __future__ import annotations

import json

import httpx
import yaml

from minirec.events import Interaction, encode, key_of
from minirec.infra.process import free_port
from minirec.infra.prometheus import RULES_DIR
from minirec.promnames import dashboard_exprs, rule_exprs, scraped_names, used_names
from minirec.settings import REPO_ROOT
from tests.stream.conftest import InProcess, stream_config, wait_for


def test_dashboard_and_streaming_rules_names_exist_in_a_live_scrape(kafka_broker, topics, feast_world, tmp_path):
    from kafka import KafkaProducer

    proc = InProcess(stream_config(kafka_broker, topics, feast_world, tmp_path / "lake"))
    port = free_port()
    proc.app.metrics.serve(port)
    try:
        prod = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
        click = Interaction(user_id=1, item_id=1, action="click")
        prod.send(topics["interactions"], key=key_of(click), value=encode(click))
        prod.send(topics["interactions"], key=b"1", value=b"{not json")
        prod.flush()
        prod.close()
        wait_for(lambda: proc.metric("stream_deadlettered_total", reason="bad_json") >= 1
                 and proc.metric("stream_events_total", topic=topics["interactions"], outcome="applied") >= 1,
                 60, "one applied and one dead-lettered event")
        live = scraped_names(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
    finally:
        proc.stop()
    dash = json.loads((REPO_ROOT / "monitoring/grafana/dashboards/streaming.json").read_text())
    rules = yaml.safe_load((RULES_DIR / "minirec.yml").read_text())
    used = used_names(dashboard_exprs(dash) + rule_exprs(rules, "streaming"), ["stream_"])
    assert {"stream_consumer_lag", "stream_freshness_seconds_bucket", "stream_deadlettered_total"} <= used
    assert used <= live, f"used but not in the live scrape: {sorted(used - live)}"
