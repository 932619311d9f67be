"""The retrain trigger against a running Airflow: `airflow standalone` (SQLite, LocalExecutor) in a
temporary AIRFLOW_HOME on free ports, the trigger built from the DRIFT_AIRFLOW_* settings the way
`make drift` builds it, one sustained drift signal -> a train_two_tower DAG run exists in Airflow
(queued or running: training is not waited for) and the audit log records it with its run id.

The run is isolated from the developer's stack: the Airflow process sees empty data, artifact and run
folders and dead Redis/Kafka ports, so a task that starts before the run is failed by the test touches
nothing; the test marks the run failed and stops Airflow (its whole process group)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import httpx
import pytest

from minirec.infra.process import InfraError, Server, free_port
from minirec.settings import REPO_ROOT, Settings
from tests.conftest import service_unavailable

pytestmark = [pytest.mark.infra, pytest.mark.slow]
DAG = "train_two_tower"


def airflow_server(home: Path, port: int, sandbox: Path) -> Server:
    venv_bin = Path(sys.executable).parent
    env = {
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",  # standalone spawns `airflow` subprocesses
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "pipelines" / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",  # the default 32 spawns ~30 workers of ~130 MB
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        # log servers default to 8793/8794 on all interfaces: free ports, so parallel runs do not clash
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        # what a task of the run would read and write: nothing of the developer's
        "DATA_DIR": str(sandbox / "data"), "ARTIFACTS_DIR": str(sandbox / "artifacts"),
        "RUN_DIR": str(sandbox / "run"), "MODEL_STORE_DIR": str(sandbox / "run" / "bentoml"),
        "REDIS_PORT": str(free_port()), "KAFKA_PORT": str(free_port()),
    }
    url = f"http://127.0.0.1:{port}/api/v2/monitor/health"
    return Server(name="airflow", argv=[str(venv_bin / "airflow"), "standalone"], host="127.0.0.1", ports=[port],
                  state_dir=home, health=lambda: httpx.get(url, timeout=3).status_code == 200, env=env, cwd=home,
                  start_timeout_s=420, hint="read the log: `airflow standalone` did not answer its health endpoint")


def token(base: str, password: str) -> dict:
    r = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=10)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def airflow(tmp_path):
    if shutil.which("airflow", path=str(Path(sys.executable).parent)) is None:
        service_unavailable("airflow", RuntimeError("apache-airflow is not in the venv (make setup)"))
    home = tmp_path / "airflow"
    home.mkdir()
    port = free_port()
    srv = airflow_server(home, port, tmp_path / "sandbox")
    try:
        srv.start()
    except InfraError as exc:
        srv.stop()
        service_unavailable("airflow standalone", exc)
    base = f"http://127.0.0.1:{port}"
    try:
        pw_file = home / "simple_auth_manager_passwords.json.generated"
        password = json.loads(pw_file.read_text())["admin"]
        auth = token(base, password)
        deadline = time.monotonic() + 120  # the dag-processor serialises the DAG folder after start
        while httpx.get(f"{base}/api/v2/dags/{DAG}", headers=auth, timeout=10).status_code != 200:
            assert time.monotonic() < deadline, f"{DAG} not parsed after 120 s; see {srv.logfile}"
            time.sleep(2)
        yield base, password
    finally:
        srv.stop(timeout_s=30)


def test_sustained_drift_creates_a_dag_run_and_the_audit_log_records_it(airflow, tmp_path):
    from monitoring.drift.__main__ import build

    base, password = airflow
    s = Settings(drift_airflow_url=base, drift_airflow_dag=DAG, drift_airflow_user="admin",
                 drift_airflow_password=password, drift_dir=tmp_path / "drift", drift_dry_run=False)
    _, _, trigger = build(s, metrics_on=False)
    record = trigger.signal(sustained=True, episode="ep-airflow", source="test", context={"streak": 3})
    assert record["action"] == "trigger", record
    assert record["result"]["via"] == "airflow" and record["result"]["dag"] == DAG
    run_id = record["result"]["dag_run_id"]

    auth = token(base, password)
    run = httpx.get(f"{base}/api/v2/dags/{DAG}/dagRuns/{run_id}", headers=auth, timeout=10)
    assert run.status_code == 200, run.text
    body = run.json()
    assert body["state"] in {"queued", "running"}, body["state"]
    assert body["conf"]["reason"] == "drift" and body["conf"]["episode"] == "ep-airflow"
    assert httpx.get(f"{base}/api/v2/dags/{DAG}", headers=auth, timeout=10).json()["is_paused"] is False

    audit = trigger.audit.read()
    assert [a["action"] for a in audit] == ["trigger"] and audit[0]["result"]["dag_run_id"] == run_id

    # a second signal in the same episode starts nothing new
    again = trigger.signal(sustained=True, episode="ep-airflow", source="test", context={"streak": 4})
    assert again["action"] == "already_fired"
    runs = httpx.get(f"{base}/api/v2/dags/{DAG}/dagRuns", headers=auth, timeout=10).json()["dag_runs"]
    # unpausing also lets the scheduler create the DAG's scheduled run; the trigger's are the manual ones
    assert [r["dag_run_id"] for r in runs if r["run_type"] == "manual"] == [run_id]

    # stop the run before training starts for real (nothing waits for it)
    httpx.patch(f"{base}/api/v2/dags/{DAG}", json={"is_paused": True}, headers=auth, timeout=10)
    httpx.patch(f"{base}/api/v2/dags/{DAG}/dagRuns/{run_id}", json={"state": "failed"}, headers=auth, timeout=10)
