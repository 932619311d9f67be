"""Start failures give a one-line cause and the fix."""

from __future__ import annotations

import socket

import pytest

from minirec.infra.process import InfraError, Server, free_port, require_binary
from minirec.infra.redis_server import redis_server


def test_port_already_taken(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        server = redis_server(tmp_path, "127.0.0.1", port)
        with pytest.raises(InfraError, match=rf"port 127.0.0.1:{port} is already taken.*change the port in .env"):
            server.start()
    assert not server.pidfile.exists()


def test_missing_binary_names_the_install(tmp_path):
    with pytest.raises(InfraError, match="not found on PATH; install it"):
        require_binary("definitely-not-a-binary-xyz", "install it with apt")


def test_process_that_dies_reports_log_tail(tmp_path):
    server = Server(name="dies", argv=["sh", "-c", "echo boom-marker; exit 3"], host="127.0.0.1",
                    ports=[free_port()], state_dir=tmp_path, health=lambda: False, hint="read the log",
                    start_timeout_s=10)
    with pytest.raises(InfraError, match=r"(?s)exited during start.*boom-marker"):
        server.start()


def test_stop_kills_the_whole_group(tmp_path):
    # a parent that spawns a child: stop must leave neither behind
    server = Server(name="tree", argv=["sh", "-c", "sleep 300 & sleep 300; wait"], host="127.0.0.1",
                    ports=[free_port()], state_dir=tmp_path, health=lambda: True, hint="-")
    pid = server.start()
    import time

    from minirec.infra.process import group_members

    deadline = time.monotonic() + 10
    while len(group_members(pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # the shell forks its children right after start
    assert len(group_members(pid)) >= 2
    assert server.stop(timeout_s=5)
    assert group_members(pid) == []
    assert server.pid() is None
