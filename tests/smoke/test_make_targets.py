"""Stack smoke tests: the real make targets, on free ports in a temp run dir
(environment variables override .env), so a developer's stack is untouched."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from minirec.infra import stack
from minirec.infra.process import free_port
from minirec.settings import REPO_ROOT, get_settings

pytestmark = pytest.mark.smoke


def processes_mentioning(text: str) -> list[str]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (entry / "stat").read_text().rsplit(") ", 1)[1][0]
            except OSError:
                continue
            if text in cmd and state != "Z":
                out.append(f"{entry.name}: {cmd[:120]}")
    return out


def make(target: str, env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", target], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_up_status_down_leaves_nothing(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "RUN_DIR": str(run_dir), "REDIS_PORT": str(free_port()),
           "KAFKA_PORT": str(free_port()), "KAFKA_CONTROLLER_PORT": str(free_port()),
           "PROMETHEUS_PORT": str(free_port()), "ALERTMANAGER_PORT": str(free_port()),
           "REDIS_EXPORTER_PORT": str(free_port()), "NODE_EXPORTER_PORT": str(free_port()),
           "KAFKA_JMX_EXPORTER_PORT": str(free_port())}
    try:
        up = make("up", env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "kafka healthy" in up.stdout and "topics:" in up.stdout

        status = make("status", env)
        assert status.returncode == 0, status.stdout + status.stderr
        # redis, redis-exporter, kafka (with its JMX exporter agent), node-exporter, prometheus, alertmanager
        infra = len(stack.servers(get_settings()))
        assert infra == 6 and status.stdout.count("healthy") == infra
        assert processes_mentioning(str(run_dir)), "no server process found under the run dir"

        # data is kept across a restart: write a key, restart redis via down/up
        import redis

        r = redis.Redis(port=int(env["REDIS_PORT"]))
        r.set("smoke:kept", "yes")
        r.close()
    finally:
        down = make("down", env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "kafka: stopped" in down.stdout
    assert processes_mentioning(str(run_dir)) == []
    status = make("status", env)
    assert status.returncode != 0 and "stopped" in status.stdout

    try:
        assert make("up", env).returncode == 0
        r = redis.Redis(port=int(env["REDIS_PORT"]))
        assert r.get("smoke:kept") == b"yes"
        r.close()
    finally:
        make("down", env)
    assert processes_mentioning(str(run_dir)) == []


def test_up_on_a_taken_port_says_so(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        env = {**os.environ, "RUN_DIR": str(tmp_path / "run"), "REDIS_PORT": str(s.getsockname()[1])}
        up = make("up", env)
    assert up.returncode != 0
    assert "already taken" in up.stderr and "change the port in .env" in up.stderr
