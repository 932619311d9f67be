"""`make bench-assignment`: the assignment service against a bare ASGI endpoint, same server stack, one run.

Targets, started one at a time on free ports with the same uvicorn settings (services/assignment/settings.py):
  * assignment  `python -m services.assignment`: parse, hash, (audience lookup), Exposure to Kafka, metrics
  * floor       `python -m services.assignment.floor`: reads the body, answers a constant

For each: warm-up, then loadtests/httpload.py (its own process, asyncio raw keep-alive sockets)
  * saturation: --connections C closed loop, no wait -> requests/s, errors
  * fixed rate: --rate R open loop -> p50 / p99 from each request's due time (no coordinated omission)
and the server's CPU seconds (utime + stime from /proc) around the saturation run -> µs per request,
the number that stays comparable when the load generator shares the two cores.

World: a private Kafka and Redis on free ports in --work (or the configured Kafka with --stack).
Bodies: POST /assign for ranker_v1 (no Redis lookup) over 10,000 user ids, 10 % cold_start_v1
(the Redis audience lookup for the users in its slice); exposures go to a fresh topic, whose
sent / dropped counters are read from /metrics after the run.

Writes artifacts/bench/assignment.json: rps, rps_floor, p99_ms, p99_ms_floor, errors, and the detail.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from minirec.infra.process import Server, free_port  # noqa: E402
from minirec.settings import get_settings  # noqa: E402


def cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def load(url: str, bodies: Path, seconds: float, connections: int, rate: float | None = None) -> dict:
    cmd = [sys.executable, str(REPO / "loadtests" / "httpload.py"), "--url", url, "--bodies", str(bodies),
           "--seconds", str(seconds), "--connections", str(connections)]
    if rate:
        cmd += ["--rate", str(rate)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 4 + 60, cwd=REPO)
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr[-1500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def start(name: str, argv: list[str], env: dict[str, str], work: Path, probe: str = "/readyz"
          ) -> tuple[Server, str]:
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    srv = Server(name=name, argv=[*argv, "--port", str(port)], host="127.0.0.1", ports=[port], state_dir=work / name,
                 health=lambda: httpx.get(url + probe, timeout=2).status_code == 200, hint=f"see {work}/{name}",
                 env=env, cwd=REPO, start_timeout_s=90)
    try:
        srv.start()
    except BaseException:
        srv.stop(timeout_s=10)
        raise
    return srv, url


def measure(name: str, srv: Server, url: str, args, bodies: Path) -> dict:
    target = url + "/assign"
    load(target, bodies, 3, 16)  # warm-up: connections, caches, the Kafka producer's metadata
    pid = srv.pid()
    c0 = cpu_s(pid)
    sat = load(target, bodies, args.seconds, args.connections)
    sat["cpu_us_per_request"] = (cpu_s(pid) - c0) / max(sat["requests"], 1) * 1e6
    fixed = load(target, bodies, args.seconds, args.connections, rate=args.rate)
    print(f"  {name}: saturation {sat['rps']:.0f} req/s ({sat['cpu_us_per_request']:.0f} µs server CPU/request), "
          f"at {args.rate:.0f} req/s p50 {fixed['p50_ms']:.2f} ms p99 {fixed['p99_ms']:.2f} ms, "
          f"errors {sat['errors'] + fixed['errors']}", flush=True)
    return {"saturation": sat, "fixed_rate": fixed}


def world(args, work: Path) -> tuple[dict[str, str], list[Server]]:
    """Kafka (private unless --stack) + Redis, an exposures topic; the env for the service."""
    from minirec.infra.kafka import create_topics, kafka_server, resolve_jars
    from minirec.infra.redis_server import redis_server
    from minirec.infra.stack import kafka_libs

    s = get_settings()
    stop: list[Server] = []
    if args.stack:
        bootstrap, redis_port = s.kafka_bootstrap, s.redis_port
    else:
        rds = redis_server(work / "redis", "127.0.0.1", free_port(), persist=False)
        rds.start()
        stop.append(rds)
        libs = kafka_libs(s)
        resolve_jars(libs)
        k = kafka_server(work / "kafka", "127.0.0.1", free_port(), free_port(), heap_mb=320, partitions=3, libs=libs)
        k.start()
        stop.append(k)
        bootstrap, redis_port = f"127.0.0.1:{k.ports[0]}", rds.ports[0]
    topic = f"bench-exposures-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, [topic], partitions=3)
    host, port = bootstrap.split(":")
    env = {"KAFKA_HOST": host, "KAFKA_PORT": port, "TOPIC_EXPOSURES": topic, "REDIS_HOST": "127.0.0.1",
           "REDIS_PORT": str(redis_port), "FEAST_PROJECT": f"bench{uuid.uuid4().hex[:6]}", "PYTHONPATH": str(REPO)}
    return env, stop


def exposure_counts(url: str) -> dict:
    import httpx

    out = {"sent": 0.0, "dropped": 0.0}
    for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
        for key, name in (("sent", "assignment_exposures_sent_total"), ("dropped", "assignment_exposures_dropped_total")):
            if line.startswith(name):
                out[key] += float(line.rsplit(" ", 1)[1])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=15.0, help="per measurement (default %(default)s)")
    p.add_argument("--connections", type=int, default=64, help="concurrent connections (default %(default)s)")
    p.add_argument("--rate", type=float, default=500.0, help="fixed offered load for p99 (default %(default)s)")
    p.add_argument("--stack", action="store_true", help="use the configured Kafka and Redis (`make up`)")
    p.add_argument("--no-kafka", action="store_true",
                   help="point the service at a closed port: every exposure is dropped and counted, which "
                        "isolates what the Kafka producer costs (not the service as deployed)")
    p.add_argument("--breakdown", action="store_true",
                   help="also measure the CPU of each part of POST /assign in-process (loadtests/assignment_breakdown.py)")
    p.add_argument("--work", type=Path, default=get_settings().run_path / "bench-assignment")
    p.add_argument("--out", type=Path, default=get_settings().artifacts_path / "bench")
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    bodies = args.work / "bodies.json"
    bodies.write_text(json.dumps([{"user_id": u, "experiment": "cold_start_v1" if u % 10 == 0 else "ranker_v1"}
                                  for u in range(1, 10_001)]))
    env, infra = world(args, args.work)
    if args.no_kafka:
        env["KAFKA_PORT"] = str(free_port())
    results: dict = {}
    try:
        for name, argv_ in (("floor", [sys.executable, "-m", "services.assignment.floor"]),
                            ("assignment", [sys.executable, "-m", "services.assignment"])):
            srv, url = start(name, argv_, env, args.work, "/healthz" if args.no_kafka else "/readyz")
            try:
                results[name] = measure(name, srv, url, args, bodies)
                if name == "assignment":
                    deadline = time.monotonic() + 15
                    while time.monotonic() < deadline:  # let the queued exposures reach Kafka
                        counts = exposure_counts(url)
                        time.sleep(0.5)
                        if exposure_counts(url) == counts:
                            break
                    results[name]["exposures"] = exposure_counts(url)
            finally:
                srv.stop(timeout_s=15)
        if args.breakdown and not args.no_kafka:
            from loadtests.assignment_breakdown import breakdown

            raw = [json.dumps(b).encode() for b in json.loads(bodies.read_text())]
            results["breakdown"] = breakdown(f"{env['KAFKA_HOST']}:{env['KAFKA_PORT']}", env["TOPIC_EXPOSURES"], raw)
            print("  breakdown (CPU µs per request, in-process):", json.dumps(
                {k: round(v, 1) for k, v in results["breakdown"].items()}), flush=True)
    finally:
        for s in reversed(infra):
            s.stop()
    a, f = results["assignment"], results["floor"]
    summary = {"rps": a["saturation"]["rps"], "rps_floor": f["saturation"]["rps"],
               "p99_ms": a["fixed_rate"]["p99_ms"], "p99_ms_floor": f["fixed_rate"]["p99_ms"],
               "errors": int(sum(r[k]["errors"] for r in (a, f) for k in ("saturation", "fixed_rate"))),
               "cpu_us_per_request": a["saturation"]["cpu_us_per_request"],
               "cpu_us_per_request_floor": f["saturation"]["cpu_us_per_request"],
               "fixed_rate_rps": args.rate, "exposures_sent": a["exposures"]["sent"],
               "exposures_dropped": a["exposures"]["dropped"]}
    summary["ratio_rps"] = summary["rps"] / summary["rps_floor"]
    summary["ratio_cpu"] = summary["cpu_us_per_request_floor"] / summary["cpu_us_per_request"]
    if "breakdown" in results:  # the best ratio this design can reach: floor / (floor + the parts)
        floor_us = summary["cpu_us_per_request_floor"]
        summary["ratio_bound"] = floor_us / (floor_us + results["breakdown"]["parts_us_per_request"])
    out = {**summary, "targets": results, "seconds": args.seconds, "connections": args.connections,
           "command": "make bench-assignment (python loadtests/bench_assignment.py " + " ".join(argv or sys.argv[1:]) + ")",
           "machine": f"{os.cpu_count()} cores, {platform.platform()}", "load_average_after": os.getloadavg(),
           "date": time.strftime("%Y-%m-%d %H:%M")}
    (args.out / "assignment.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out / 'assignment.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
