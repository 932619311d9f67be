"""Explorer fixtures: the serving tests' trained world and real recommender (tests/serving/conftest.py),
the real assignment service (tests/assignment/conftest.py), and `start_explorer(...)`, which runs
`python -m services.explorer` as a real process on a free port pointed at them through the environment."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import httpx

from minirec.infra.process import InfraError, Server, free_port
from minirec.settings import REPO_ROOT
from tests.serving.conftest import impressions_topic, recommender, world  # noqa: F401

__all__ = ["impressions_topic", "recommender", "start_explorer", "world"]


class Explorer:
    def __init__(self, server: Server, url: str, env: dict[str, str]):
        self.server, self.url, self.env = server, url, env

    def stop(self) -> None:
        self.server.stop(timeout_s=15)


def start_explorer(state_dir: Path, env: dict[str, str]) -> Explorer:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"EXPLORER_HOST": "127.0.0.1", "EXPLORER_PORT": str(port), "PYTHONPATH": str(REPO_ROOT), **env}
    server = Server(name=f"explorer-{uuid.uuid4().hex[:6]}", argv=[sys.executable, "-m", "services.explorer"],
                    host="127.0.0.1", ports=[port], state_dir=state_dir,
                    health=lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200,
                    hint="read the log: the explorer failed to start", env=env, cwd=REPO_ROOT, start_timeout_s=60)
    try:
        server.start()
    except InfraError:
        server.stop()
        raise
    return Explorer(server, url, env)
