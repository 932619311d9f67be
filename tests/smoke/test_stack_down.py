"""`make down` after the whole native stack (infrastructure + every app `make stack` starts) leaves
no process it started and no port listening. Runs on free ports in a temp run dir, over the serving
tests' trained world (model store, Feast repo), so a developer's stack is untouched."""

from __future__ import annotations

import os
import subprocess

import pytest

from minirec.infra import stack
from minirec.infra.process import free_port, pid_alive, port_in_use
from minirec.settings import REPO_ROOT, Settings

pytestmark = [pytest.mark.smoke, pytest.mark.slow, pytest.mark.infra]

PORTS = ("REDIS_PORT", "KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "PROMETHEUS_PORT", "ALERTMANAGER_PORT",
         "STREAM_METRICS_PORT", "RECOMMENDER_PORT", "ASSIGNMENT_PORT", "DRIFT_METRICS_PORT", "EXPLORER_PORT")


def run(args: list[str], env: dict, timeout: int = 400) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_down_after_the_whole_stack_leaves_no_process_and_no_port(world, tmp_path):
    ports = {name: str(free_port()) for name in PORTS}
    env = {**os.environ, **world.env, **ports, "RUN_DIR": str(tmp_path / "run"),
           "ARTIFACTS_DIR": str(tmp_path / "artifacts"), "STREAM_LAKE_DIR": str(tmp_path / "lake"),
           "DRIFT_LAKE_DIR": str(tmp_path / "lake"), "DRIFT_DIR": str(tmp_path / "drift"),
           "EXPLORER_DATASET_DIR": str(world.data_dir), "RECOMMENDER_ITEMS_TABLE": str(world.data_dir / "items.parquet"),
           "BENTOML_HOME": str(tmp_path / "bentoml_home"), "REDIS_HOST": "127.0.0.1"}
    s = Settings(**{k.lower(): v for k, v in {**world.env, **ports}.items()}, run_dir=tmp_path / "run")
    py = str(REPO_ROOT / ".venv" / "bin" / "python")
    try:
        up = run(["make", "-s", "up"], env)
        assert up.returncode == 0, up.stdout + up.stderr
        apps = run([py, "-m", "minirec.cli", "up-apps"], env)
        assert apps.returncode == 0, apps.stdout + apps.stderr
        status = run([py, "-m", "minirec.cli", "status", "--memory"], env)
        assert status.returncode == 0, status.stdout + status.stderr
        names = [srv.name for srv in [*stack.servers(s), *stack.apps(s)]]
        assert all(f"{n} " in status.stdout for n in names) and "total" in status.stdout, status.stdout
        pids = [p for srv in [*stack.servers(s), *stack.apps(s)] if (pid := srv.pid()) for p in stack.descendants(pid)]
        assert len(pids) > len(names), pids  # the recommender's worker is a child of its arbiter
        assert all(port_in_use("127.0.0.1", int(p)) for p in ports.values()), ports
    finally:
        down = run(["make", "-s", "down"], env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert [p for p in pids if pid_alive(p)] == []
    assert [name for name, p in ports.items() if port_in_use("127.0.0.1", int(p))] == []
