"""The infrastructure exporters on real servers: Debian's prometheus-redis-exporter in front of the
session's redis-server, prometheus-node-exporter, and the JMX exporter javaagent inside a Kafka broker
(the pinned jar from deploy/kafka/pom.xml, the rules in deploy/kafka/jmx-exporter.yml). Each one's
metrics appear in a live scrape, a real Prometheus scrapes all three (its /api/v1/targets says up),
the infrastructure dashboard and alert rules use only names they declare, and every panel of that
dashboard parses and returns data from Prometheus's HTTP API after Kafka traffic."""

from __future__ import annotations

import json
import urllib.request

import pytest
import yaml

from minirec.infra.exporters import node_exporter_server, redis_exporter_server
from minirec.infra.kafka import create_topics, kafka_server, resolve_jars
from minirec.infra.process import InfraError, free_port
from minirec.infra.prometheus import RULES_DIR
from minirec.infra.stack import kafka_libs
from minirec.promnames import dashboard_exprs, rule_exprs, scraped_names, used_names
from minirec.settings import REPO_ROOT, get_settings
from tests.conftest import service_unavailable
from tests.monitoring.prom import isolated_prometheus, query, target_health, wait_for_data

pytestmark = [pytest.mark.infra, pytest.mark.slow]
DASHBOARD = REPO_ROOT / "monitoring" / "grafana" / "dashboards" / "infrastructure.json"


def scrape(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:  # noqa: S310 - loopback
        return r.read().decode()


def sample(text: str, name: str) -> float:
    """The value of the first unlabelled sample `name` on a /metrics page."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not on the page")


def start(server):
    try:
        server.start()
    except InfraError as exc:
        service_unavailable(server.name, exc)
    return server


@pytest.fixture(scope="module")
def kafka_with_agent(tmp_path_factory):
    """A Kafka node of its own with the JMX exporter attached (the session broker has none)."""
    libs = kafka_libs(get_settings())
    try:
        resolve_jars(libs)
    except InfraError as exc:
        service_unavailable("Maven (Kafka jars)", exc)
    srv = start(kafka_server(tmp_path_factory.mktemp("kafka-jmx"), "127.0.0.1", free_port(), free_port(),
                             heap_mb=320, libs=libs, jmx_exporter_port=free_port()))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def exporters(redis_server, kafka_with_agent, tmp_path_factory):
    """name -> base URL of the three exporters, plus a Prometheus that scrapes them ("prometheus")."""
    home = tmp_path_factory.mktemp("exporters")
    red = start(redis_exporter_server(home / "redis", "127.0.0.1", free_port(), redis_server.host, redis_server.port))
    node = start(node_exporter_server(home / "node", "127.0.0.1", free_port()))
    urls = {"redis": f"http://127.0.0.1:{red.ports[0]}", "node": f"http://127.0.0.1:{node.ports[0]}",
            "kafka": f"http://127.0.0.1:{kafka_with_agent.ports[2]}"}
    prom = isolated_prometheus(home / "prom", REDIS_EXPORTER_SCRAPE=f"127.0.0.1:{red.ports[0]}",
                               NODE_EXPORTER_SCRAPE=f"127.0.0.1:{node.ports[0]}",
                               KAFKA_JMX_SCRAPE=f"127.0.0.1:{kafka_with_agent.ports[2]}")
    start(prom)
    yield {**urls, "prometheus": f"http://127.0.0.1:{prom.ports[0]}"}
    for srv in (prom, node, red):
        srv.stop()


def produce(bootstrap: str, n: int) -> None:
    from kafka import KafkaProducer

    create_topics(bootstrap, ["jmx-test"], partitions=3)
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(n):
        producer.send("jmx-test", f"event {i}".encode())
    producer.flush()
    producer.close()


def test_redis_exporter_sees_the_live_redis(exporters):
    text = scrape(exporters["redis"])
    assert sample(text, "redis_up") == 1.0
    assert sample(text, "redis_connected_clients") >= 1  # the exporter's own connection at least


def test_redis_exporter_reports_an_unreachable_redis_as_down(tmp_path):
    """What the RedisDown alert reads: redis_up 0 when nothing listens at the address."""
    port = free_port()
    srv = start(redis_exporter_server(tmp_path, "127.0.0.1", port, "127.0.0.1", free_port()))
    try:
        assert sample(scrape(f"http://127.0.0.1:{port}"), "redis_up") == 0.0
    finally:
        srv.stop()


def test_node_exporter_reports_cpu_time(exporters):
    text = scrape(exporters["node"])
    cpu = [line for line in text.splitlines() if line.startswith("node_cpu_seconds_total{")]
    assert cpu and any('mode="idle"' in line and float(line.split()[1]) > 0 for line in cpu)


def test_kafka_jmx_agent_counts_the_messages_produced(exporters, kafka_with_agent):
    before = sample(scrape(exporters["kafka"]), "kafka_server_brokertopicmetrics_messagesin_total")
    produce(f"127.0.0.1:{kafka_with_agent.ports[0]}", 50)
    text = scrape(exporters["kafka"])
    assert sample(text, "kafka_server_brokertopicmetrics_messagesin_total") - before == 50
    assert sample(text, "kafka_server_brokertopicmetrics_bytesin_total") > 0
    assert sample(text, "kafka_server_replicamanager_underreplicatedpartitions") == 0.0
    assert 'kafka_network_requestmetrics_totaltimems{quantile="0.99",request="Produce"' in text


def test_prometheus_scrapes_the_exporters_and_every_infrastructure_panel_returns_data(exporters,
                                                                                      kafka_with_agent):
    prom = exporters["prometheus"]
    produce(f"127.0.0.1:{kafka_with_agent.ports[0]}", 20)  # traffic for the Kafka panels
    panels = dashboard_exprs(json.loads(DASHBOARD.read_text()))
    rules = rule_exprs(yaml.safe_load((RULES_DIR / "minirec.yml").read_text()), "infrastructure")
    live = set().union(*(scraped_names(scrape(exporters[n])) for n in ("redis", "node", "kafka")))
    used = used_names(panels + rules, ["redis_", "kafka_", "node_"])
    assert {"redis_up", "kafka_server_replicamanager_underreplicatedpartitions"} <= used
    assert used <= live, f"used but not in the live scrapes: {sorted(used - live)}"

    empty = wait_for_data(prom, panels + ['up{job="kafka"} == 1'], timeout_s=90)
    assert not empty, f"no data after 90 s: {empty}"
    assert {job: target_health(prom)[job] for job in ("redis", "node", "kafka")} == \
        {"redis": "up", "node": "up", "kafka": "up"}
    for e in panels + rules:
        assert query(prom, e)["status"] == "success", e
    assert query(prom, "sum(kafka_server_brokertopicmetrics_messagesin_total)")["data"]["result"][0]["value"][1] != "0"


def test_a_broken_panel_expression_is_reported(exporters):
    """The parse check above can fail: Prometheus answers a malformed expression with an error."""
    answer = query(exporters["prometheus"], "sum(rate(redis_commands_processed_total[1m])")
    assert answer["status"] == "error" and answer["errorType"] == "bad_data"
