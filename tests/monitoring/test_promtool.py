"""Prometheus and Alertmanager configuration checked by their own tools (Debian's promtool, amtool):
the rendered scrape config, the alert rules, the rules' unit tests, the Alertmanager route."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from minirec.infra.prometheus import RULES_DIR, TEMPLATE, render_config
from minirec.settings import REPO_ROOT, get_settings

TESTS = REPO_ROOT / "monitoring" / "prometheus" / "tests"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        import os

        if os.environ.get("CI") == "true":
            pytest.fail(f"`{name}` missing: `make setup` installs it (Debian prometheus / prometheus-alertmanager)")
        pytest.skip(f"`{name}` not installed (run `make setup`)")
    return path


def run(*argv: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=cwd)


def native_config(tmp_path) -> str:
    s = get_settings()
    values = {"PROMETHEUS_SCRAPE_SELF": "127.0.0.1:9090", "RECOMMENDER_SCRAPE": "127.0.0.1:3001",
              "STREAM_SCRAPE": "127.0.0.1:3004", "DRIFT_SCRAPE": f"127.0.0.1:{s.drift_metrics_port}",
              "ASSIGNMENT_SCRAPE": f"127.0.0.1:{s.assignment_port}",
              "ALERTMANAGER_TARGET": f"127.0.0.1:{s.alertmanager_port}", "PROMETHEUS_RULES": str(RULES_DIR / "*.yml"),
              "REDIS_EXPORTER_SCRAPE": f"127.0.0.1:{s.redis_exporter_port}",
              "NODE_EXPORTER_SCRAPE": f"127.0.0.1:{s.node_exporter_port}",
              "KAFKA_JMX_SCRAPE": f"127.0.0.1:{s.kafka_jmx_exporter_port}"}
    path = tmp_path / "prometheus.yml"
    path.write_text(render_config(values, TEMPLATE))
    return str(path)


def test_promtool_check_config_on_the_rendered_config(tmp_path):
    r = run(tool("promtool"), "check", "config", native_config(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout and "15 rules found" in r.stdout  # the rule files were found through it


def test_promtool_check_rules():
    r = run(tool("promtool"), "check", "rules", *map(str, sorted(RULES_DIR.glob("*.yml"))))
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_promtool_unit_tests_of_the_alerts():
    r = run(tool("promtool"), "test", "rules", *[p.name for p in sorted(TESTS.glob("*.test.yml"))], cwd=TESTS)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_a_wrong_expectation_fails_promtool(tmp_path):
    """The unit tests can fail: the same file with one expectation flipped does."""
    src = (TESTS / "minirec.test.yml").read_text()
    broken = src.replace('- eval_time: 12m  # 0.1 % errors: below the 1 % line\n        alertname: RecommenderErrorRateHigh\n        exp_alerts: []',
                         '- eval_time: 12m\n        alertname: RecommenderErrorRateHigh\n        exp_alerts: [{exp_labels: {severity: page}}]')
    assert broken != src
    (tmp_path / "rules").mkdir()
    shutil.copy(RULES_DIR / "minirec.yml", tmp_path / "rules" / "minirec.yml")
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "x.test.yml").write_text(broken)
    r = run(tool("promtool"), "test", "rules", "x.test.yml", cwd=tmp_path / "t")
    assert r.returncode != 0 and "FAILED" in r.stdout + r.stderr


def test_amtool_check_config_on_the_rendered_route(tmp_path):
    from minirec.infra.alertmanager import TEMPLATE as AM

    path = tmp_path / "alertmanager.yml"
    path.write_text(render_config({"DRIFT_WEBHOOK": "127.0.0.1:3006"}, AM))
    r = run(tool("amtool"), "check-config", str(path))
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
    assert "drift-retrain" in path.read_text()
