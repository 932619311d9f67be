"""Alertmanager (Debian `prometheus-alertmanager`) on loopback with the route from
`monitoring/alertmanager/alertmanager.yml.tmpl`, rendered from the settings.

Clustering is off (`--cluster.listen-address=`): one instance, no gossip port.
Port 9095 by default because 9093 is Kafka's controller and 9094 is Alertmanager's
own cluster port.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

from minirec.infra.process import Server, require_binary
from minirec.infra.prometheus import render_config
from minirec.settings import REPO_ROOT

TEMPLATE = REPO_ROOT / "monitoring" / "alertmanager" / "alertmanager.yml.tmpl"
BINARY = "prometheus-alertmanager"


def alertmanager_ready(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp:  # noqa: S310 - loopback URL from settings
        return resp.status == 200


def alertmanager_server(home: Path, host: str, port: int, webhook: str) -> Server:
    """`webhook` is host:port of the drift job's /alerts endpoint."""
    config = home / "alertmanager.yml"
    url = f"http://{host}:{port}"

    def prepare() -> None:
        require_binary(BINARY, "install it with `apt-get install -y prometheus-alertmanager` (or run `make setup`)")
        (home / "data").mkdir(parents=True, exist_ok=True)
        config.write_text(render_config({"DRIFT_WEBHOOK": webhook}, TEMPLATE))

    argv = [BINARY, f"--config.file={config}", f"--storage.path={home / 'data'}",
            f"--web.listen-address={host}:{port}", "--cluster.listen-address="]
    return Server(name="alertmanager", argv=argv, host=host, ports=[port], state_dir=home,
                  health=lambda: alertmanager_ready(url), prepare=prepare, start_timeout_s=30.0,
                  hint="is prometheus-alertmanager installed and the port free? the config is at " + str(config))
