"""`make compose-smoke-full`: the whole docker-compose.yml under podman (Grafana behind its
profile): model-init trains the first model, then from the host a recommendation, an
assignment, a click through the explorer that the stream processor writes into the user's
seen-set in Redis, Prometheus scraping every job, a bounded simulator run, Airflow healthy
with both DAGs in its metadata database, and nothing left behind.

Marked `compose_full`: `make test` (what CI runs) deselects it because it takes minutes
(the README gives the measured time); `make test-compose-full` runs it."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from minirec.settings import REPO_ROOT

pytestmark = [pytest.mark.smoke, pytest.mark.slow, pytest.mark.compose_full]


def test_compose_smoke_full():
    proc = subprocess.run(["make", "-s", "compose-smoke-full"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=3600, env={**os.environ})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "model-init exited with 0" in out
    for name in ("recommender", "assignment", "stream", "drift", "explorer"):
        assert re.search(rf"^{name} +ready", out, re.M), name
    assert re.search(r"^recommend +200, 10 items from model \S+ \(fallback none\)", out, re.M)
    assert re.search(r"^assign +200, user \d+ in ranker_v1 -> (control|treatment)$", out, re.M)
    assert re.search(r"^click +202 -> Kafka -> stream -> Redis: \S+ holds item \d+", out, re.M)
    assert "prometheus  targets up: recommender, stream, assignment, drift, redis, kafka, node" in out
    handled = re.search(r"^stream +(\d+) interactions handled", out, re.M)
    assert handled and int(handled.group(1)) > 1
    assert "airflow-init exited with 0" in out
    assert "airflow     /api/v2/monitor/health: metadatabase, scheduler, dag_processor healthy" in out
    assert re.search(r"^airflow +DAGs in the metadata database: drift_monitor train_two_tower", out, re.M)
    assert "left behind: containers=0 networks=0 volumes=0" in out
