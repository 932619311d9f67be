"""The native stack: which servers run, in which order, from the settings."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

from minirec.infra.alertmanager import alertmanager_server
from minirec.infra.exporters import node_exporter_server, redis_exporter_server
from minirec.infra.kafka import create_topics, kafka_health, kafka_server
from minirec.infra.process import InfraError, Server
from minirec.infra.prometheus import prometheus_server
from minirec.infra.redis_server import redis_server
from minirec.settings import REPO_ROOT, Settings


def kafka_libs(s: Settings) -> Path:
    """Where Maven puts the broker jars (shared by the native stack and test fixtures)."""
    return s.run_path / "kafka-libs"


def servers(s: Settings) -> list[Server]:
    """Start order; stop runs in reverse. Kafka carries its JMX exporter as a javaagent."""
    run = s.run_path
    return [
        redis_server(run / "redis", s.redis_host, s.redis_port),
        redis_exporter_server(run / "redis-exporter", s.exporter_host, s.redis_exporter_port,
                              s.redis_host, s.redis_port),
        kafka_server(run / "kafka", s.kafka_host, s.kafka_port, s.kafka_controller_port,
                     heap_mb=s.kafka_heap_mb, partitions=s.kafka_partitions, libs=kafka_libs(s),
                     jmx_exporter_port=s.kafka_jmx_exporter_port),
        node_exporter_server(run / "node-exporter", s.exporter_host, s.node_exporter_port),
        prometheus_server(run / "prometheus", s.prometheus_host, s.prometheus_port),
        alertmanager_server(run / "alertmanager", s.alertmanager_host, s.alertmanager_port,
                            webhook=f"{s.drift_metrics_host}:{s.drift_metrics_port}"),
    ]


def _metrics_answer(url: str) -> bool:
    """GET url answers 200 (urlopen raises on 4xx/5xx and on a refused connection)."""
    with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback URL from settings
        return resp.status == 200


def stream_server(s: Settings) -> Server:
    """The stream processor as a native background process (`make stack`); needs the
    infrastructure up and a Feast registry (`make train` writes it)."""
    url = f"http://{s.stream_metrics_host}:{s.stream_metrics_port}/metrics"
    return Server(name="stream", argv=[sys.executable, "-m", "services.stream"], host=s.stream_metrics_host,
                  ports=[s.stream_metrics_port], state_dir=s.run_path / "stream",
                  health=lambda: _metrics_answer(url), cwd=REPO_ROOT, start_timeout_s=120,
                  hint="it needs `make up` and a Feast registry from `make train`; read the log")


def recommender_server(s: Settings) -> Server:
    """The BentoML recommender (`make serve` in the background); healthy once /readyz says it can answer."""
    url = f"{s.recommender_url}/readyz"
    return Server(name="recommender", argv=[sys.executable, "-m", "services.recommender"],
                  host=s.recommender_host, ports=[s.recommender_port], state_dir=s.run_path / "recommender",
                  health=lambda: _metrics_answer(url), cwd=REPO_ROOT, start_timeout_s=180,
                  hint="it needs a production model (`make train`) and `make up`; read the log")


def assignment_server(s: Settings) -> Server:
    """The A/B assignment service as a native background process (`make stack`); ready once its
    Exposure producer reached Kafka (a bad experiments file makes it exit with the line named)."""
    url = f"http://{s.assignment_host}:{s.assignment_port}/readyz"
    return Server(name="assignment", argv=[sys.executable, "-m", "services.assignment"], host=s.assignment_host,
                  ports=[s.assignment_port], state_dir=s.run_path / "assignment",
                  health=lambda: _metrics_answer(url), cwd=REPO_ROOT, start_timeout_s=60,
                  hint="it needs Kafka (`make up`) and a valid ASSIGNMENT_EXPERIMENTS file; read the log")


def drift_server(s: Settings) -> Server:
    """The drift monitor loop (`make drift` in the background): /metrics and the Alertmanager webhook.
    It starts without a reference (it says so in its log and waits for `make train`)."""
    url = f"http://{s.drift_metrics_host}:{s.drift_metrics_port}/healthz"
    return Server(name="drift", argv=[sys.executable, "-m", "monitoring.drift", "loop"], host=s.drift_metrics_host,
                  ports=[s.drift_metrics_port], state_dir=s.run_path / "drift-proc",
                  health=lambda: _metrics_answer(url), cwd=REPO_ROOT, start_timeout_s=120,
                  env={"DO_NOT_TRACK": "1"}, hint="read the log; `make drift` runs it in the foreground")


def explorer_server(s: Settings) -> Server:
    """The explorer page (services/explorer): one user's view of the running stack, over HTTP."""
    url = f"{s.explorer_url}/healthz"
    return Server(name="explorer", argv=[sys.executable, "-m", "services.explorer"], host=s.explorer_host,
                  ports=[s.explorer_port], state_dir=s.run_path / "explorer",
                  health=lambda: _metrics_answer(url), cwd=REPO_ROOT, start_timeout_s=60,
                  hint="read the log; `python -m services.explorer` runs it in the foreground")


def apps(s: Settings) -> list[Server]:
    """The project's own long-running processes that `make stack` starts after the infrastructure."""
    return [stream_server(s), recommender_server(s), assignment_server(s), drift_server(s), explorer_server(s)]


def up_apps(s: Settings, echo=print) -> None:
    registry = s.feature_repo_path / "data" / "registry.db"
    if not registry.exists():
        raise InfraError(f"no Feast registry at {registry}: run `make train` first (it applies the repo)")
    for server in apps(s):
        echo(f"starting {server.name} on {server.host}:{server.ports[0]} ...")
        pid = server.start()
        echo(f"  {server.name} healthy (pid {pid}, log {server.logfile})")


def up(s: Settings, echo=print) -> None:
    for server in servers(s):
        echo(f"starting {server.name} on {server.host}:{server.ports[0]} ...")
        pid = server.start()
        echo(f"  {server.name} healthy (pid {pid}, log {server.logfile})")
        if server.name == "kafka":
            created = create_topics(s.kafka_bootstrap, s.topics, s.kafka_partitions)
            echo(f"  topics: {', '.join(s.topics)}" + (f" (created {', '.join(created)})" if created else ""))


def down(s: Settings, echo=print) -> None:
    for server in [*apps(s), *reversed(servers(s))]:
        was = server.stop()
        echo(f"{server.name}: {'stopped' if was else 'not running'}")


def status(s: Settings) -> list[dict]:
    """Infrastructure first, then the apps (an app that is not running is reported, not required)."""
    rows = [server.status() for server in servers(s)]
    for server in apps(s):
        rows.append({**server.status(), "optional": True})
    return rows


def probe(s: Settings, timeout_s: float = 180.0, interval_s: float = 2.0,
          names: list[str] | None = None) -> dict[str, bool]:
    """Health of each service (or of `names` only) by its own check (no pid files):
    for servers this process did not start, such as containers. Waits until all
    pass or the timeout; returns name -> healthy."""
    import time

    chosen = [srv for srv in servers(s) if names is None or srv.name in names]
    unknown = set(names or ()) - {srv.name for srv in chosen}
    if unknown:
        raise InfraError(f"unknown service(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(srv.name for srv in servers(s))}")

    def check(srv: Server) -> bool:
        if srv.name == "kafka":  # the broker only: a container does not publish its JMX agent's port
            try:
                return bool(kafka_health(f"{s.kafka_host}:{s.kafka_port}"))
            except Exception:  # noqa: BLE001 - any failure of a probe means "not healthy"
                return False
        return srv.healthy()

    deadline = time.monotonic() + timeout_s
    while True:
        result = {srv.name: check(srv) for srv in chosen}
        if all(result.values()) or time.monotonic() > deadline:
            return result
        time.sleep(interval_s)


def _kib(path: Path, field: str) -> int:
    """A `field:  N kB` line of a /proc file, in KiB (0 when the process is gone or hides it)."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """`pid` and every live process below it (by parent pid, read from /proc): BentoML's circus
    arbiter puts its workers in sessions of their own, so a process group misses them."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] != "Z":  # fields[0] = state, fields[1] = parent pid
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def memory(s: Settings) -> list[dict]:
    """Memory of every process the stack started (each server and all its descendants: BentoML's
    workers, ...): rss_mib = sum of RSS (shared pages counted once per process, an
    upper bound), pss_mib = sum of PSS (shared pages split between their users: what the stack
    really adds). Servers that are not running are left out."""
    rows = []
    for server in [*servers(s), *apps(s)]:
        pid = server.pid()
        if pid is None:
            continue
        pids = descendants(pid)
        proc = [Path(f"/proc/{p}") for p in pids]
        rows.append({"name": server.name, "processes": len(pids),
                     "rss_mib": sum(_kib(p / "status", "VmRSS") for p in proc) / 1024,
                     "pss_mib": sum(_kib(p / "smaps_rollup", "Pss") for p in proc) / 1024})
    return rows
