"""Helpers for the serving tests that run a service against dedicated Redis and Kafka.

    wait_for(cond, timeout_s)         poll a condition with a deadline (no fixed sleeps in tests)
    start_unready(state_dir, env)     `bentoml serve` that may start without a model (waits for /livez)
    Load(url, users, threads)         closed-loop /recommend traffic until stopped; counts what came back
    topic_request_ids(bootstrap, t)   distinct request ids of every impression on a topic, read to its end
    shutdown_balance(logfile)         the impression log's last balance line, as numbers
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import httpx

from minirec.infra.process import Server, free_port


def wait_for(cond, timeout_s: float, step: float = 0.25) -> bool:
    """True as soon as cond() is truthy; False after timeout_s. A raising cond counts as not yet."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if cond():
                return True
        except Exception:  # noqa: BLE001 - a probe that fails is "not yet"
            pass
        time.sleep(step)
    return False


def start_unready(state_dir: Path, env: dict[str, str]):
    """serve() waits for readiness; a service started without a model only becomes live."""
    from tests.serving.conftest import BENTOML, REPO_ROOT, Running

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Server(name="recommender", argv=[BENTOML, "serve", "services.recommender.service:Recommender",
                                              "--host", "127.0.0.1", "--port", str(port)],
                    host="127.0.0.1", ports=[port], state_dir=state_dir,
                    health=lambda: httpx.get(f"{url}/livez", timeout=2).status_code == 200,
                    hint="read the service log", env=env, cwd=REPO_ROOT, start_timeout_s=120)
    server.start()
    return Running(server, url)


class Load:
    """`threads` clients posting /recommend in a loop until stop() or until the server goes away.

    codes: every status received; ok_ids: request ids of the 200 answers; versions: model versions
    seen in 200 answers (in arrival order, with repeats)."""

    def __init__(self, url: str, users: list[int], threads: int = 4, timeout_s: float = 30):
        self.url, self.users, self.timeout_s = url, users, timeout_s
        self.codes: list[int] = []
        self.ok_ids: list[str] = []
        self.versions: list[str] = []
        self.refused = 0  # connection errors once the server stopped listening
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(t,), daemon=True) for t in range(threads)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self, t: int) -> None:
        i = t
        with httpx.Client(base_url=self.url, timeout=self.timeout_s) as c:
            while not self._stop.is_set():
                try:
                    r = c.post("/recommend", json={"user_id": self.users[i % len(self.users)]})
                except httpx.HTTPError:
                    self.refused += 1
                    if self.refused > 50:
                        return
                    time.sleep(0.05)
                    continue
                self.codes.append(r.status_code)
                if r.status_code == 200:
                    body = r.json()
                    self.ok_ids.append(body["request_id"])
                    self.versions.append(body["model_version"])
                i += len(self._threads)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout_s + 5)


def topic_request_ids(bootstrap: str, topic: str, timeout_s: float = 60) -> set[str]:
    """Read every partition of `topic` from the start to its current end; distinct request ids."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=1000)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        ids: set[str] = set()
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(p) < end[p] for p in parts):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end within {timeout_s} s")
            for msg in consumer:
                ids.add(json.loads(msg.value)["request_id"])
        return ids
    finally:
        consumer.close()


BALANCE = re.compile(r"impressions closed in ([\d.]+) s: (.*)$")


def shutdown_balance(logfile: Path) -> dict[str, float]:
    """{"seconds", "logged", "sent", "dropped", "dropped_<reason>"...} from the last balance line."""
    lines = [m for m in map(BALANCE.search, logfile.read_text(errors="replace").splitlines()) if m]
    if not lines:
        raise AssertionError(f"the service left no impression balance line in {logfile}")
    m = lines[-1]
    out = {"seconds": float(m.group(1))}
    out.update({k: float(v) for k, v in re.findall(r"\b(logged|sent|dropped(?:_[a-z_]+)?)=(\d+)", m.group(2))})
    return out
