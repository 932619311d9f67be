"""Prometheus exporters for the infrastructure, Debian packages on loopback:

    prometheus-redis-exporter  (1.45)  redis_up, redis_connected_clients, memory, commands, keys
    prometheus-node-exporter   (1.5)   node_cpu_seconds_total, memory, filesystem, network, load

Kafka's broker metrics come from the JMX exporter javaagent inside the broker
(minirec.infra.kafka, `jmx_exporter_port`), not from a process here.
Healthy = /metrics answers 200 (the Redis exporter answers even when Redis is down,
with redis_up 0: that is what the RedisDown alert reads).
"""

from __future__ import annotations

from pathlib import Path

from minirec.infra.process import Server, http_ok, require_binary

REDIS_EXPORTER = "prometheus-redis-exporter"
NODE_EXPORTER = "prometheus-node-exporter"


def _exporter(name: str, binary: str, argv: list[str], home: Path, host: str, port: int) -> Server:
    def prepare() -> None:
        require_binary(binary, f"install it with `apt-get install -y {binary}` (or run `make setup`)")
        home.mkdir(parents=True, exist_ok=True)

    return Server(name=name, argv=[binary, *argv], host=host, ports=[port], state_dir=home,
                  health=lambda: http_ok(f"http://{host}:{port}/metrics", 5), prepare=prepare,
                  start_timeout_s=30.0, hint=f"is {binary} installed and the port free?")


def redis_exporter_server(home: Path, host: str, port: int, redis_host: str, redis_port: int) -> Server:
    # Go flag syntax: single dash; the exporter reconnects on each scrape, so start order is free
    argv = [f"-web.listen-address={host}:{port}", f"-redis.addr=redis://{redis_host}:{redis_port}"]
    return _exporter("redis-exporter", REDIS_EXPORTER, argv, home, host, port)


def node_exporter_server(home: Path, host: str, port: int) -> Server:
    # textfile collector off: its default folder belongs to the Debian service
    argv = [f"--web.listen-address={host}:{port}", "--no-collector.textfile"]
    return _exporter("node-exporter", NODE_EXPORTER, argv, home, host, port)
