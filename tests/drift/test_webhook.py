"""The retrain path the ecosystem's way: an alert in a real Alertmanager (Debian prometheus-alertmanager)
is routed by monitoring/alertmanager's route to the drift process's POST /alerts, which decides
(dry run here) and audits; plus the endpoint's answers to bad input and its /metrics page."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest

from minirec.infra.alertmanager import alertmanager_server
from minirec.infra.process import InfraError, free_port
from monitoring.drift.metrics import DriftMetrics
from monitoring.drift.server import serve
from monitoring.drift.trigger import AuditLog, Retrainer, Trigger, TriggerConfig
from tests.conftest import service_unavailable


@pytest.fixture
def endpoint(tmp_path):
    metrics = DriftMetrics(trigger_windows=3)
    trig = Trigger(TriggerConfig(3, 3600, dry_run=True), tmp_path / "trigger.json", AuditLog(tmp_path / "a.jsonl"),
                   Retrainer(command="true", cwd=tmp_path, log_dir=tmp_path),
                   on_action=lambda a: metrics.decisions.labels(a).inc())
    port = free_port()
    httpd = serve("127.0.0.1", port, metrics.registry, trig)
    yield f"127.0.0.1:{port}", trig, metrics
    httpd.shutdown()


def post(url: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def alert(status="firing", starts="2030-01-01T00:00:00Z"):
    return {"status": status, "alerts": [{"status": status, "labels": {"alertname": "DriftSustained"},
                                          "startsAt": starts, "fingerprint": "abc"}]}


def test_webhook_decides_once_per_episode_and_refuses_bad_input(endpoint):
    addr, trig, metrics = endpoint
    assert post(f"http://{addr}/alerts", json.dumps(alert()).encode()) == (200, {"decisions": ["dry_run"]})
    assert post(f"http://{addr}/alerts", json.dumps(alert()).encode()) == (200, {"decisions": ["already_fired"]})
    assert post(f"http://{addr}/alerts", json.dumps(alert("resolved")).encode()) == (200, {"decisions": ["none"]})
    code, body = post(f"http://{addr}/alerts", b"{not json")
    assert code == 400 and "error" in body
    code, body = post(f"http://{addr}/alerts", b'{"status": "firing"}')
    assert code == 400 and "alerts" in body["error"]
    other = {"alerts": [{"status": "firing", "labels": {"alertname": "StreamConsumerLagHigh"}}]}
    assert post(f"http://{addr}/alerts", json.dumps(other).encode()) == (200, {"decisions": []})
    page = urllib.request.urlopen(f"http://{addr}/metrics", timeout=5).read().decode()
    assert 'drift_retrain_decisions_total{action="dry_run"} 1.0' in page and "drift_trigger_windows 3.0" in page


def test_a_real_alertmanager_routes_drift_sustained_to_the_webhook(endpoint, tmp_path):
    if shutil.which("prometheus-alertmanager") is None:
        service_unavailable("alertmanager", InfraError("prometheus-alertmanager not installed (make setup)"))
    addr, trig, _ = endpoint
    am = alertmanager_server(tmp_path / "am", "127.0.0.1", free_port(), webhook=addr)
    try:
        am.start()
    except InfraError as exc:
        service_unavailable("alertmanager", exc)
    try:
        now = datetime.now(UTC).isoformat()
        body = json.dumps([{"labels": {"alertname": "DriftSustained", "severity": "retrain"}, "startsAt": now},
                           {"labels": {"alertname": "DriftDetected", "severity": "ticket"}, "startsAt": now}])
        code, _ = post(f"http://127.0.0.1:{am.ports[0]}/api/v2/alerts", body.encode())
        assert code == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not trig.audit.read():
            time.sleep(0.2)
        records = trig.audit.read()
        assert [r["action"] for r in records] == ["dry_run"], records  # only the routed alert arrived
        assert records[0]["source"] == "alertmanager" and records[0]["alert"]["labels"]["severity"] == "retrain"
    finally:
        am.stop()
