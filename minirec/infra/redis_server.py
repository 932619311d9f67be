"""redis-server (Debian package) on loopback, persistence in the state dir.

Append-only file on, so data survives `make down` / `make up`."""

from __future__ import annotations

from pathlib import Path

from minirec.infra.process import Server, require_binary


def redis_ping(host: str, port: int) -> bool:
    import redis

    client = redis.Redis(host=host, port=port, socket_timeout=1.0, socket_connect_timeout=1.0)
    try:
        return bool(client.ping())
    finally:
        client.close()


def redis_server(home: Path, host: str, port: int, persist: bool = True) -> Server:
    binary = "redis-server"

    def prepare() -> None:
        require_binary(binary, "install it with `apt-get install -y redis-server` (or run `make setup`)")
        home.mkdir(parents=True, exist_ok=True)

    argv = [binary, "--bind", host, "--port", str(port), "--dir", str(home),
            "--daemonize", "no", "--protected-mode", "yes", "--save", "",
            "--appendonly", "yes" if persist else "no", "--logfile", ""]
    return Server(
        name="redis",
        argv=argv,
        host=host,
        ports=[port],
        state_dir=home,
        health=lambda: redis_ping(host, port),
        hint="is redis-server installed and the port free?",
        prepare=prepare,
        start_timeout_s=20.0,
    )
