"""A supervised local server process: start detached, wait for health, stop by pid.

Each server writes `<state_dir>/<name>.pid` and `<state_dir>/<name>.log`.
Start refuses a port that something else holds (one-line cause + fix),
waits until the health check passes or fails with the log tail and a hint.
Stop sends SIGTERM to the process group, waits, then SIGKILLs stragglers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class InfraError(RuntimeError):
    """A server could not start or stop; the message names the cause and the fix."""


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (tests use it to avoid the dev stack)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def pid_alive(pid: int) -> bool:
    try:  # reap it if it is our own exited child, so it does not linger as a zombie
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still answers kill(0); treat it as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """GET url answers 200 (urlopen raises on 4xx/5xx and on a refused connection)."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - loopback URLs from settings
        return resp.status == 200


def log_tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return "(no log written)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def require_binary(name: str, fix: str) -> str:
    found = shutil.which(name)
    if not found:
        raise InfraError(f"`{name}` not found on PATH; {fix}")
    return found


@dataclass
class Server:
    name: str
    argv: list[str]
    host: str
    ports: list[int]
    state_dir: Path
    health: Callable[[], bool]
    hint: str  # what to try when it does not become healthy
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    start_timeout_s: float = 60.0
    prepare: Callable[[], None] | None = None  # one-time setup before the first start

    @property
    def pidfile(self) -> Path:
        return self.state_dir / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return self.state_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def healthy(self) -> bool:
        try:
            return bool(self.health())
        except Exception:  # noqa: BLE001 - any failure of a probe means "not healthy"
            return False

    def status(self) -> dict:
        pid = self.pid()
        return {
            "name": self.name,
            "pid": pid,
            "ports": self.ports,
            "running": pid is not None,
            "healthy": pid is not None and self.healthy(),
            "log": str(self.logfile),
        }

    def start(self) -> int:
        """Start (or adopt a running instance); returns the pid once healthy."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        pid = self.pid()
        if pid is not None:
            self._wait_healthy(pid)
            return pid
        for port in self.ports:
            if port_in_use(self.host, port):
                raise InfraError(
                    f"{self.name}: port {self.host}:{port} is already taken by another process; "
                    f"stop it (`ss -ltnp 'sport = :{port}'` shows who) or change the port in .env"
                )
        if self.prepare is not None:
            self.prepare()
        with open(self.logfile, "ab") as log:
            proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                env={**os.environ, **self.env},
                start_new_session=True,  # own process group: stop kills the whole tree
            )
        self.pidfile.write_text(str(proc.pid))
        self._wait_healthy(proc.pid, proc)
        return proc.pid

    def _wait_healthy(self, pid: int, proc: subprocess.Popen | None = None) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.healthy():
                return
            exited = proc.poll() is not None if proc is not None else not pid_alive(pid)
            if exited:
                self.pidfile.unlink(missing_ok=True)
                raise InfraError(
                    f"{self.name} exited during start; hint: {self.hint}\n--- {self.logfile} (tail) ---\n"
                    f"{log_tail(self.logfile)}"
                )
            time.sleep(0.25)
        raise InfraError(
            f"{self.name} did not become healthy within {self.start_timeout_s:.0f} s on "
            f"{self.host}:{self.ports}; hint: {self.hint}\n--- {self.logfile} (tail) ---\n{log_tail(self.logfile)}"
        )

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM the process group, wait, SIGKILL if needed. Returns True if it was running."""
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            pgid = None
        self._signal(pid, pgid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._group_alive(pid, pgid):
            time.sleep(0.1)
        if self._group_alive(pid, pgid):
            self._signal(pid, pgid, signal.SIGKILL)
            time.sleep(0.2)
        self.pidfile.unlink(missing_ok=True)
        return True

    @staticmethod
    def _signal(pid: int, pgid: int | None, sig: int) -> None:
        try:
            if pgid is not None and pgid == pid:
                os.killpg(pgid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    @staticmethod
    def _group_alive(pid: int, pgid: int | None) -> bool:
        if pid_alive(pid):
            return True
        return pgid is not None and pgid == pid and bool(group_members(pgid))


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) pids in a process group, read from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields[0] = state, fields[2] = pgrp
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(entry.name))
    return out
