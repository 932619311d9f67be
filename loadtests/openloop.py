"""An open-loop, constant-rate load generator: requests leave on a fixed schedule.

A closed-loop generator (Locust's users waiting for each answer) slows down
when the server does, so a stall delays the requests that would have seen it
and the tail is under-reported ("coordinated omission", Gil Tene's name for
it). Here request i is due at t0 + i / rate whatever happened before, and its
latency is measured from that due time, so time spent queued behind a stall
counts. The generator's own lateness (actual send - due time) is reported
too: when its p99 is not small against the server's, the client was the
bottleneck and the run says so.

    stats = run_open_loop("http://127.0.0.1:3000/recommend", bodies, rate=100, seconds=30)
    stats["p99_ms"], stats["send_lag_p99_ms"]
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


async def _fire(session, url: str, body: bytes, due: float, timeout_s: float, lat: list, errs: list,
                lags: list) -> None:
    import aiohttp

    lags.append(time.perf_counter() - due)
    try:
        async with session.post(url, data=body, headers={"content-type": "application/json"},
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            await resp.read()
            if resp.status != 200:
                errs.append(f"http_{resp.status}")
                return
    except TimeoutError:
        errs.append("timeout")
        return
    except Exception as exc:  # connection refused/reset: counted, the schedule goes on
        errs.append(type(exc).__name__)
        return
    lat.append(time.perf_counter() - due)


async def _run(url: str, body_of: Callable[[int], bytes], rate: float, seconds: float, timeout_s: float,
               max_in_flight: int) -> dict[str, Any]:
    import aiohttp

    n = int(rate * seconds)
    lat: list[float] = []
    errs: list[str] = []
    lags: list[float] = []
    connector = aiohttp.TCPConnector(limit=max_in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = []
        t0 = time.perf_counter() + 0.05
        for i in range(n):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_fire(session, url, body_of(i), due, timeout_s, lat, errs, lags)))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - t0
    ms = np.asarray(lat) * 1000
    q = (lambda p: float(np.percentile(ms, p))) if len(ms) else (lambda p: float("nan"))
    lag_ms = np.asarray(lags) * 1000
    return {"generator": "open-loop aiohttp (loadtests/openloop.py)", "offered_rps": rate, "seconds": seconds,
            "requests": n, "ok": int(len(ms)), "errors": len(errs),
            "error_kinds": {k: errs.count(k) for k in sorted(set(errs))}, "achieved_rps": len(ms) / wall,
            "p50_ms": q(50), "p90_ms": q(90), "p99_ms": q(99), "max_ms": float(ms.max()) if len(ms) else float("nan"),
            "send_lag_p99_ms": float(np.percentile(lag_ms, 99)) if len(lag_ms) else float("nan")}


def run_open_loop(url: str, bodies: Sequence[dict[str, Any]], rate: float = 100.0, seconds: float = 30.0,
                  timeout_s: float = 5.0, max_in_flight: int = 512) -> dict[str, Any]:
    """POST bodies[i % len(bodies)] to `url` at `rate` req/s for `seconds`; latency from the due time."""
    raw = [json.dumps(b).encode() for b in bodies]
    return asyncio.run(_run(url, lambda i: raw[i % len(raw)], rate, seconds, timeout_s, max_in_flight))


def population_bodies(users_file: str, n: int = 5000, k: int = 10, seed: int = 0) -> list[dict[str, Any]]:
    """/recommend bodies with users drawn by activity (the Locust mix's population file)."""
    d = json.loads(open(users_file).read())
    w = np.asarray(d["weights"], dtype=float)
    users = np.random.default_rng(seed).choice(np.asarray(d["user_ids"]), size=n, p=w / w.sum())
    return [{"user_id": int(u), "k": k, "exclude_seen": True} for u in users]
