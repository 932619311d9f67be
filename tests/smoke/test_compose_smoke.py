"""`make compose-smoke`: docker-compose.yml really runs under podman with
images built from a local Debian base, answers health checks from the host,
and leaves no container, network or volume behind."""

from __future__ import annotations

import os
import subprocess

import pytest

from minirec.settings import REPO_ROOT

pytestmark = pytest.mark.smoke


def test_compose_smoke():
    proc = subprocess.run(["make", "-s", "compose-smoke"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=1500, env={**os.environ})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    for name in ("redis", "kafka", "prometheus"):
        assert f"{name:<12}healthy" in out
    assert "topics      all present" in out
    assert "left behind: containers=0 networks=0 volumes=0" in out
