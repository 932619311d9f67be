"""A small HTTP/1.1 load generator (asyncio + uvloop, raw keep-alive sockets), for cheap endpoints.

Locust spends more CPU per request than a hash-and-lookup service does (one process tops out
near 7.5k req/s here), so on two cores it would measure itself; this sends pre-built requests
over kept-alive connections and parses only the status line and Content-Length.

    closed loop   --connections C, no wait: requests/s at saturation
    open loop     --rate R: request i is due at start + i / R, whatever happened before; its
                  latency counts from that due time (so a stall shows up in p99 instead of
                  silently lowering the offered load: no coordinated omission)

    python loadtests/httpload.py --url http://127.0.0.1:3005/assign --bodies bodies.json \
        --seconds 10 [--connections 64 | --rate 1000] -> one JSON line on stdout
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit

import numpy as np


def request_bytes(host: str, port: int, path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one response; returns its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    if length:
        await reader.readexactly(length)
    return status


class Stats:
    def __init__(self):
        self.latencies: list[float] = []
        self.errors = 0
        self.statuses: dict[int, int] = {}


async def worker(host: str, port: int, reqs: list[bytes], deadline: float, st: Stats, schedule=None) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = 0
    try:
        while True:
            if schedule is not None:
                due = schedule()
                if due is None:
                    return
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                t0 = due
            else:
                t0 = time.perf_counter()
                if t0 >= deadline:
                    return
            writer.write(reqs[i % len(reqs)])
            i += 7919  # a prime stride: consecutive requests of one connection differ
            try:
                status = await read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                st.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            st.latencies.append(time.perf_counter() - t0)
            st.statuses[status] = st.statuses.get(status, 0) + 1
            if status >= 400:
                st.errors += 1
    finally:
        writer.close()


async def run(url: str, bodies: list[bytes], seconds: float, connections: int, rate: float | None) -> dict:
    u = urlsplit(url)
    reqs = [request_bytes(u.hostname, u.port, u.path, b) for b in bodies]
    st = Stats()
    start = time.perf_counter() + 0.2  # let the connections open first
    deadline = start + seconds
    schedule = None
    if rate:
        total = int(rate * seconds)
        counter = iter(range(total))

        def schedule():
            k = next(counter, None)
            return None if k is None else start + k / rate
    tasks = [asyncio.create_task(worker(u.hostname, u.port, reqs, deadline, st, schedule)) for _ in range(connections)]
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    lat = np.array(st.latencies) * 1000 if st.latencies else np.array([float("nan")])
    return {"requests": len(st.latencies), "errors": st.errors, "seconds": elapsed,
            "rps": len(st.latencies) / elapsed, "offered_rps": rate, "connections": connections,
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max()),
            "statuses": {str(k): v for k, v in sorted(st.statuses.items())}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--bodies", required=True, help="JSON file: a list of request bodies (objects)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--rate", type=float, default=None, help="open loop at this many requests/s")
    a = p.parse_args(argv)
    bodies = [json.dumps(b, separators=(",", ":")).encode() for b in json.load(open(a.bodies))]
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        print(json.dumps(runner.run(run(a.url, bodies, a.seconds, a.connections, a.rate))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
