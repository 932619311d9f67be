"""Locust load for the recommender: a realistic mix sharing the service's sample payloads.

    85 %  POST /recommend       users drawn by activity (heavy users come back more often)
    10 %  POST /similar_items   items drawn from the catalogue
     5 %  POST /recommend       cold users (ids the online store has never seen)

Environment:
    LOCUST_USERS_FILE   JSON {"user_ids": [...], "weights": [...], "item_ids": [...]} (bench_serving
                        writes it from the data); without it the sample payloads are replayed
    LOCUST_MIX          "full" (default) or "recommend" (only /recommend, e.g. for the floor service)
    LOCUST_RATE         requests/s per simulated user (constant throughput); unset = as fast as possible

    locust -f loadtests/locustfile.py --headless -u 32 -r 32 -t 30s --host http://127.0.0.1:3001
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import gevent
from locust import HttpUser, constant, constant_throughput, task

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from services.recommender.schemas import samples  # noqa: E402

SAMPLES = samples()
MIX = os.environ.get("LOCUST_MIX", "full")
RATE = float(os.environ["LOCUST_RATE"]) if os.environ.get("LOCUST_RATE") else None


def _population() -> tuple[list[int], list[float], list[int]]:
    path = os.environ.get("LOCUST_USERS_FILE")
    if path and Path(path).exists():
        d = json.loads(Path(path).read_text())
        return d["user_ids"], d["weights"], d["item_ids"]
    return [SAMPLES["recommend"]["user_id"]], [1.0], [SAMPLES["similar_items"]["item_id"]]


USERS, WEIGHTS, ITEMS = _population()


class Visitor(HttpUser):
    wait_time = constant_throughput(RATE) if RATE else constant(0)

    def on_start(self) -> None:
        # users spawned together would fire in lock-step bursts at a fixed rate (a burst of N
        # simultaneous requests every 1/RATE s), which measures queueing, not the service:
        # start each at a random phase so arrivals spread over the interval
        if RATE:
            gevent.sleep(random.random() / RATE)

    @task(85)
    def recommend(self) -> None:
        uid = random.choices(USERS, WEIGHTS)[0]
        self.client.post("/recommend", json={**SAMPLES["recommend"], "user_id": uid}, name="/recommend")

    @task(10)
    def similar_items(self) -> None:
        if MIX == "recommend":
            return self.recommend()
        self.client.post("/similar_items", json={**SAMPLES["similar_items"], "item_id": random.choice(ITEMS)},
                         name="/similar_items")

    @task(5)
    def cold_user(self) -> None:
        uid = 10**8 + random.randrange(10**6)
        self.client.post("/recommend", json={**SAMPLES["recommend_cold"], "user_id": uid}, name="/recommend (cold)")
