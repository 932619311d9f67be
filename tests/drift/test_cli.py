"""`python -m monitoring.drift loop` as a process: it serves /healthz and /metrics (with the configured
N of the retrain rule) and stops cleanly on SIGTERM; `once` on an empty lake says what to do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from minirec.infra.process import free_port
from minirec.settings import REPO_ROOT


def env(tmp_path, **extra) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "DO_NOT_TRACK": "1", "DRIFT_DIR": str(tmp_path / "drift"),
            "DRIFT_LAKE_DIR": str(tmp_path / "lake"), "DRIFT_REFERENCE_DIR": str(tmp_path / "no-reference"),
            "DRIFT_INTERVAL_S": "1", **extra}


def test_loop_serves_metrics_and_stops_on_sigterm(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "monitoring.drift", "loop"], cwd=REPO_ROOT,
                            env=env(tmp_path, DRIFT_METRICS_PORT=str(port), DRIFT_TRIGGER_WINDOWS="4"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, page = time.monotonic() + 120, ""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    page = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert "drift_trigger_windows 4.0" in page, proc.stdout.read().decode()[-2000:] if proc.poll() else page
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_once_on_an_empty_lake_names_what_to_do(tmp_path):
    r = subprocess.run([sys.executable, "-m", "monitoring.drift", "once"], cwd=REPO_ROOT, env=env(tmp_path),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "no closed window" in r.stderr and "simulator" in r.stderr
