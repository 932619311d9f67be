"""Prometheus (Debian package) on loopback with the scrape config from
`monitoring/prometheus/prometheus.yml.tmpl`, rendered from the settings."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

from minirec.infra.process import InfraError, Server, require_binary
from minirec.settings import REPO_ROOT

TEMPLATE = REPO_ROOT / "monitoring" / "prometheus" / "prometheus.yml.tmpl"
RULES_DIR = REPO_ROOT / "monitoring" / "prometheus" / "rules"


def render_config(values: dict[str, str], template: Path = TEMPLATE) -> str:
    """Fill `${NAME}` placeholders; an unknown name is an error, not an empty string."""
    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in values:
            raise InfraError(f"{template.name} uses ${{{name}}} but no value was given for it")
        return values[name]

    lines = template.read_text().splitlines(keepends=True)
    # comment lines are copied as they are (they may mention the placeholder syntax)
    return "".join(line if line.lstrip().startswith("#") else re.sub(r"\$\{([A-Z0-9_]+)\}", sub, line)
                   for line in lines)


def prometheus_ready(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp:  # noqa: S310 - loopback URL from settings
        return resp.status == 200


def prometheus_server(home: Path, host: str, port: int, values: dict[str, str] | None = None) -> Server:
    config = home / "prometheus.yml"
    url = f"http://{host}:{port}"
    from minirec.settings import get_settings

    cfg = get_settings()
    vals = {
        "PROMETHEUS_SCRAPE_SELF": f"{host}:{port}",
        "RECOMMENDER_SCRAPE": f"{cfg.recommender_host}:{cfg.recommender_port}",
        "STREAM_SCRAPE": f"{cfg.stream_metrics_host}:{cfg.stream_metrics_port}",
        "ASSIGNMENT_SCRAPE": f"{cfg.assignment_host}:{cfg.assignment_port}",
        "DRIFT_SCRAPE": f"{cfg.drift_metrics_host}:{cfg.drift_metrics_port}",
        "ALERTMANAGER_TARGET": f"{cfg.alertmanager_host}:{cfg.alertmanager_port}",
        "REDIS_EXPORTER_SCRAPE": f"{cfg.exporter_host}:{cfg.redis_exporter_port}",
        "NODE_EXPORTER_SCRAPE": f"{cfg.exporter_host}:{cfg.node_exporter_port}",
        "KAFKA_JMX_SCRAPE": f"{cfg.kafka_host}:{cfg.kafka_jmx_exporter_port}",
        "PROMETHEUS_RULES": str(RULES_DIR / "*.yml"),
        **(values or {}),
    }

    def prepare() -> None:
        require_binary("prometheus", "install it with `apt-get install -y prometheus` (or run `make setup`)")
        (home / "data").mkdir(parents=True, exist_ok=True)
        config.write_text(render_config(vals))

    argv = ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address={host}:{port}", "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=7d"]
    return Server(
        name="prometheus",
        argv=argv,
        host=host,
        ports=[port],
        state_dir=home,
        health=lambda: prometheus_ready(url),
        hint="is the prometheus binary installed and the port free? the config is at " + str(config),
        prepare=prepare,
        start_timeout_s=30.0,
    )
