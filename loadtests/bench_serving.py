"""`make bench-serving`: batching on, batching off, the BentoML floor (and batching on with the default GC), in one run.

For each target it starts a fresh `bentoml serve` (one at a time, same worker and
thread settings), warms it up, then runs Locust headless:
  * saturation: SAT_USERS users with no wait -> requests/s, errors;
  * fixed offered loads (RATES req/s, Locust constant throughput) -> p50/p95/p99;
  * open loop: OPEN_RATE req/s for OPEN_SECONDS on a fixed schedule, latency from
    each request's due time (loadtests/openloop.py; no coordinated omission):
    the fixed-rate figures of the summary (p50_ms, p99_ms, *_floor) come from it;
and reads the server's CPU time (utime + stime of every process in its
process group, from /proc) around each run: CPU µs per request is robust when
Locust shares the two cores.

World: by default a private Redis on a free port, a private Kafka (or the
configured one when it answers), and a model trained by loadtests.world on a
synthetic dataset shaped like MovieLens-100K; `--stack` uses the configured
Redis, Kafka and model store instead (`make up && make train`).

Writes artifacts/bench/serving.json, serving.md and serving.png.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from minirec.infra.process import Server, free_port  # noqa: E402
from minirec.settings import get_settings  # noqa: E402

BIN = Path(sys.executable).parent
TARGETS = {
    "batching_on": ("services.recommender.service:Recommender", {"RECOMMENDER_BATCHING": "true"}, "full"),
    "batching_off": ("services.recommender.service:Recommender", {"RECOMMENDER_BATCHING": "false"}, "full"),
    "floor": ("services.recommender.floor:Floor", {}, "recommend"),
    # the same as batching_on with CPython's default GC (no gc.freeze): the tail fix's before/after
    "batching_on_no_freeze": ("services.recommender.service:Recommender",
                              {"RECOMMENDER_BATCHING": "true", "RECOMMENDER_GC_FREEZE": "false"}, "full"),
}


def clk() -> int:
    return os.sysconf("SC_CLK_TCK")


def tree_cpu_s(root: int) -> float:
    """utime + stime (s) of `root` and all its live descendants (the circus arbiter and the
    BentoML workers, which run in their own sessions), plus their reaped children."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            except (OSError, IndexError):
                pass
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, f in stats.items():
            if int(f[1]) == parent and pid not in tree:  # f[1] = ppid
                tree.add(pid)
                frontier.append(pid)
    # fields after the command: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    # utime stime cutime cstime
    ticks = sum(int(stats[p][11]) + int(stats[p][12]) + int(stats[p][13]) + int(stats[p][14])
                for p in tree if p in stats)
    return ticks / clk()


def start_service(name: str, target: str, env: dict[str, str], state: Path) -> tuple[Server, str]:
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    srv = Server(name=name, argv=[str(BIN / "bentoml"), "serve", target, "--host", "127.0.0.1", "--port", str(port)],
                 host="127.0.0.1", ports=[port], state_dir=state,
                 health=lambda: httpx.get(f"{url}/readyz", timeout=2).status_code == 200,
                 hint=f"see {state}/{name}.log", env=env, cwd=REPO, start_timeout_s=180)
    try:
        srv.start()
    except BaseException:
        srv.stop(timeout_s=15)
        raise
    return srv, url


def locust(url: str, users: int, seconds: int, mix: str, out: Path, rate: float | None,
           users_file: Path) -> dict:
    env = {**os.environ, "LOCUST_MIX": mix, "LOCUST_USERS_FILE": str(users_file), "PYTHONPATH": str(REPO)}
    env.pop("LOCUST_RATE", None)
    if rate:
        env["LOCUST_RATE"] = str(rate)
    cmd = [str(BIN / "locust"), "-f", str(REPO / "loadtests" / "locustfile.py"), "--headless", "-u", str(users),
           "-r", str(users), "-t", f"{seconds}s", "--host", url, "--csv", str(out), "--only-summary",
           "--loglevel", "WARNING", "--stop-timeout", "5"]
    subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=seconds + 60)
    with open(f"{out}_stats.csv") as f:
        rows = {r["Name"]: r for r in csv.DictReader(f)}
    agg = rows["Aggregated"]
    rec = {k: v for k, v in rows.items() if k.startswith("/recommend") and k != "/recommend (cold)"}
    rec = rec.get("/recommend", agg)

    def num(r, k):
        try:
            return float(r[k])
        except (KeyError, ValueError):
            return float("nan")

    return {"requests": int(num(agg, "Request Count")), "failures": int(num(agg, "Failure Count")),
            "rps": num(agg, "Requests/s"), "p50_ms": num(agg, "50%"), "p95_ms": num(agg, "95%"),
            "p99_ms": num(agg, "99%"), "recommend_p99_ms": num(rec, "99%")}


def measure(name: str, url: str, srv: Server, mix: str, args, work: Path, users_file: Path) -> dict:
    pgid = srv.pid()
    res = {"rates": {}}
    locust(url, 8, 5, mix, work / f"{name}_warm", None, users_file)  # warm-up (batcher training, caches)
    c0 = tree_cpu_s(pgid)
    sat = locust(url, args.sat_users, args.seconds, mix, work / f"{name}_sat", None, users_file)
    c1 = tree_cpu_s(pgid)
    sat["cpu_us_per_request"] = (c1 - c0) / max(sat["requests"], 1) * 1e6
    res["saturation"] = sat
    for rate in args.rates:
        users = max(1, int(rate // args.rate_per_user))
        r = locust(url, users, args.seconds, mix, work / f"{name}_r{rate}", args.rate_per_user, users_file)
        res["rates"][str(rate)] = r
        print(f"  {name} @ {rate} req/s offered: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.0f} ms, "
              f"p99 {r['p99_ms']:.0f} ms, failures {r['failures']}", flush=True)
    print(f"  {name} saturation: {sat['rps']:.0f} req/s, {sat['cpu_us_per_request']:.0f} µs CPU/request, "
          f"failures {sat['failures']}", flush=True)
    from loadtests.openloop import population_bodies, run_open_loop

    ol = run_open_loop(f"{url}/recommend", population_bodies(str(users_file)), rate=args.open_rate,
                       seconds=args.open_seconds)
    res["open_loop"] = ol
    print(f"  {name} open loop @ {args.open_rate:.0f} req/s: p50 {ol['p50_ms']:.1f} ms, p90 {ol['p90_ms']:.1f} ms, "
          f"p99 {ol['p99_ms']:.1f} ms, max {ol['max_ms']:.0f} ms, errors {ol['errors']}, "
          f"client send lag p99 {ol['send_lag_p99_ms']:.1f} ms", flush=True)
    return res


def build_env(args, work: Path) -> tuple[dict[str, str], Path, list]:
    """Redis + Kafka + model for the services; returns env, users file, servers to stop."""
    import pandas as pd

    from minirec.infra.kafka import create_topics, kafka_health, kafka_server, resolve_jars
    from minirec.infra.redis_server import redis_server
    from minirec.infra.stack import kafka_libs

    s = get_settings()
    stop: list = []
    env = {"BENTOML_DO_NOT_TRACK": "True", "PYTHONPATH": str(REPO), "BENTOML_HOME": str(work / "bentoml_home")}
    if args.stack:
        inter = pd.read_parquet(s.data_path / "ml-100k" / "interactions.parquet", columns=["user_id", "item_id"])
        bootstrap = s.kafka_bootstrap
    else:
        from loadtests.world import World, build_world

        saved = work / "world.json"
        port = json.loads(saved.read_text())["redis_port"] if saved.exists() else free_port()
        rds = redis_server(work / "redis", "127.0.0.1", port, persist=True)
        rds.start()
        stop.append(rds)
        if saved.exists():  # --work DIR of an earlier run: reuse its model and online store
            w = json.loads(saved.read_text())
            world = World(root=Path(w["root"]), model_store=Path(w["model_store"]),
                          feature_repo=Path(w["feature_repo"]), data_dir=Path(w["data_dir"]),
                          redis_host="127.0.0.1", redis_port=port, project=w["project"], tags=w["tags"])
        else:
            print(f"building the serving world (synthetic {args.users} users x {args.items} items)...", flush=True)
            world = build_world(work / "world", "127.0.0.1", port, users=args.users, items=args.items,
                                mean_interactions=args.mean_interactions, epochs=2)
            saved.write_text(json.dumps({"root": str(world.root), "model_store": str(world.model_store),
                                         "feature_repo": str(world.feature_repo), "data_dir": str(world.data_dir),
                                         "project": world.project, "tags": world.tags, "redis_port": port}))
        env.update(world.env)
        env["RECOMMENDER_ITEMS_TABLE"] = str(world.data_dir / "items.parquet")
        inter = pd.read_parquet(world.data_dir / "interactions.parquet", columns=["user_id", "item_id"])
        try:
            kafka_health(s.kafka_bootstrap)
            bootstrap = s.kafka_bootstrap
        except Exception:
            libs = kafka_libs(s)
            resolve_jars(libs)
            k = kafka_server(work / "kafka", "127.0.0.1", free_port(), free_port(), heap_mb=256, partitions=3,
                             libs=libs)
            k.start()
            stop.append(k)
            bootstrap = f"127.0.0.1:{k.ports[0]}"
    topic = f"bench-impressions-{int(time.time())}"
    create_topics(bootstrap, [topic], partitions=3)
    host, port = bootstrap.split(":")
    env.update({"KAFKA_HOST": host, "KAFKA_PORT": port, "TOPIC_IMPRESSIONS": topic})
    counts = inter.groupby("user_id").size()
    users_file = work / "population.json"
    users_file.write_text(json.dumps({"user_ids": counts.index.astype(int).tolist(),
                                      "weights": counts.astype(float).tolist(),
                                      "item_ids": sorted(inter["item_id"].astype(int).unique().tolist())}))
    return env, users_file, stop


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, res in results.items():
        xs, p50, p99 = [], [], []
        for _rate, r in sorted(res["rates"].items(), key=lambda kv: float(kv[0])):
            xs.append(r["rps"])
            p50.append(r["p50_ms"])
            p99.append(r["p99_ms"])
        sat = res["saturation"]
        xs.append(sat["rps"])
        p50.append(sat["p50_ms"])
        p99.append(sat["p99_ms"])
        line, = ax.plot(xs, p99, marker="o", label=f"{name} p99")
        ax.plot(xs, p50, marker=".", linestyle="--", color=line.get_color(), label=f"{name} p50")
    ax.set_xlabel("achieved throughput (requests/s); last point = saturation")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax.set_title("recommender latency vs load (1 worker, 2 shared cores)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(out: dict) -> str:
    r = out["targets"]
    lines = ["# Serving benchmark", "",
             f"`{out['command']}` on {out['machine']}, {out['date']}; Locust {out['sat_users']} users, no wait, "
             f"{out['seconds']} s per point; fixed loads at {', '.join(map(str, out['rates']))} req/s offered.", "",
             "| target | saturation req/s | server CPU µs/request | p50 ms | p95 ms | p99 ms | errors |",
             "|---|---|---|---|---|---|---|"]
    for name, res in r.items():
        s = res["saturation"]
        lines.append(f"| {name} | {s['rps']:.0f} | {s['cpu_us_per_request']:.0f} | {s['p50_ms']:.0f} | "
                     f"{s['p95_ms']:.0f} | {s['p99_ms']:.0f} | {s['failures']} |")
    lines += ["", "Latency at fixed offered load (ms, p50 / p95 / p99; achieved req/s):", "",
              "| target | " + " | ".join(f"{x} req/s" for x in out["rates"]) + " |",
              "|---|" + "---|" * len(out["rates"])]
    for name, res in r.items():
        cells = [f"{v['p50_ms']:.0f} / {v['p95_ms']:.0f} / {v['p99_ms']:.0f} ({v['rps']:.0f})"
                 for v in res["rates"].values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    t = out["summary"]
    lines += ["", "| interface key | value | target |", "|---|---|---|"]
    targets = {"ratio_on_off": "≥ 1.3", "ratio_recommend_floor": "≥ 0.7", "p99_ms": "≤ 30", "errors": "0",
               "ratio_p99_floor": "≤ 2", "ratio_cpu_floor": "≤ 1.4"}
    for k in ("rps_batching_on", "rps_batching_off", "rps_floor", "ratio_on_off", "ratio_recommend_floor",
              "cpu_us_per_request_on", "cpu_us_per_request_off", "cpu_us_per_request_floor", "ratio_cpu_floor",
              "p50_ms", "p90_ms", "p99_ms", "p50_ms_floor", "p99_ms_floor", "ratio_p99_floor",
              "rps_no_freeze", "cpu_us_per_request_no_freeze", "p99_ms_no_freeze",
              "locust_p99_ms_at_100", "errors"):
        v = t[k]
        lines.append(f"| {k} | {v:.2f} | {targets.get(k, '')} |" if isinstance(v, float) else
                     f"| {k} | {v} | {targets.get(k, '')} |")
    lines += ["", f"p50/p90/p99 (and *_floor) in the summary: {t['fixed_rate_generator']}, /recommend only, "
              "batching on (floor: the constant-returning BentoML service); latency from each request's due time. "
              "locust_p99_ms_at_100 is Locust's closed-loop figure for the full mix, kept for comparison. "
              "*_no_freeze: batching on with CPython's default GC (RECOMMENDER_GC_FREEZE=false), the "
              "before of the tail fix (services/recommender/heap.py).",
              "![latency vs load](serving.png)", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--sat-users", type=int, default=64)
    p.add_argument("--rates", type=int, nargs="*", default=[50, 100, 200])
    p.add_argument("--rate-per-user", type=float, default=5.0)
    p.add_argument("--open-rate", type=float, default=100.0, help="open-loop offered rate, req/s (default 100)")
    p.add_argument("--open-seconds", type=float, default=30.0, help="open-loop duration, s (default 30)")
    p.add_argument("--targets", nargs="*", default=list(TARGETS))
    p.add_argument("--stack", action="store_true", help="use the configured Redis/Kafka/model store")
    p.add_argument("--users", type=int, default=943)
    p.add_argument("--items", type=int, default=1682)
    p.add_argument("--mean-interactions", type=float, default=40.0)
    p.add_argument("--work", type=Path, default=get_settings().run_path / "bench-serving",
                   help="working folder (default run/bench-serving); a later run reuses its world")
    p.add_argument("--out", type=Path, default=get_settings().artifacts_path / "bench")
    args = p.parse_args(argv)
    if 100 not in args.rates:
        args.rates.append(100)
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    env, users_file, infra = build_env(args, work)
    results = {}
    try:
        for name in args.targets:
            target, extra, mix = TARGETS[name]
            print(f"[{name}] starting {target}", flush=True)
            srv, url = start_service(name, target, {**env, **extra}, work / name)
            try:
                results[name] = measure(name, url, srv, mix, args, work, users_file)
            finally:
                srv.stop(timeout_s=15)
    finally:
        for s in reversed(infra):
            s.stop()
    on, off, floor, nf = (results.get(k, {}) for k in ("batching_on", "batching_off", "floor", "batching_on_no_freeze"))

    def g(res, *path, default=float("nan")):
        for k in path:
            if not isinstance(res, dict) or k not in res:
                return default
            res = res[k]
        return res

    at100 = g(on, "rates", "100", default={})
    ol_on, ol_floor, ol_nf = (g(r, "open_loop", default={}) for r in (on, floor, nf))
    nan = float("nan")
    summary = {
        "rps_batching_on": g(on, "saturation", "rps"), "rps_batching_off": g(off, "saturation", "rps"),
        "rps_floor": g(floor, "saturation", "rps"),
        "cpu_us_per_request_on": g(on, "saturation", "cpu_us_per_request"),
        "cpu_us_per_request_off": g(off, "saturation", "cpu_us_per_request"),
        "cpu_us_per_request_floor": g(floor, "saturation", "cpu_us_per_request"),
        "p50_ms": ol_on.get("p50_ms", nan), "p90_ms": ol_on.get("p90_ms", nan), "p99_ms": ol_on.get("p99_ms", nan),
        "p50_ms_floor": ol_floor.get("p50_ms", nan), "p99_ms_floor": ol_floor.get("p99_ms", nan),
        "p99_ms_no_freeze": ol_nf.get("p99_ms", nan), "rps_no_freeze": g(nf, "saturation", "rps"),
        "cpu_us_per_request_no_freeze": g(nf, "saturation", "cpu_us_per_request"),
        "fixed_rate_generator": f"open-loop aiohttp at {args.open_rate:.0f} req/s for {args.open_seconds:.0f} s "
                                "(loadtests/openloop.py)",
        "locust_p50_ms_at_100": at100.get("p50_ms", nan), "locust_p99_ms_at_100": at100.get("p99_ms", nan),
        "errors": int(sum(r["saturation"]["failures"] + sum(v["failures"] for v in r["rates"].values())
                          + r.get("open_loop", {}).get("errors", 0) for r in results.values())),
    }
    summary["ratio_on_off"] = summary["rps_batching_on"] / summary["rps_batching_off"]
    summary["ratio_recommend_floor"] = summary["rps_batching_on"] / summary["rps_floor"]
    summary["ratio_p99_floor"] = summary["p99_ms"] / summary["p99_ms_floor"]
    summary["ratio_cpu_floor"] = summary["cpu_us_per_request_on"] / summary["cpu_us_per_request_floor"]
    out = {**summary, "summary": summary, "targets": results,
           "command": "make bench-serving (python loadtests/bench_serving.py " + " ".join(argv or sys.argv[1:]) + ")",
           "machine": f"{os.cpu_count()} cores, {platform.platform()}", "date": time.strftime("%Y-%m-%d %H:%M"),
           "sat_users": args.sat_users, "seconds": args.seconds, "rates": args.rates,
           "settings": {k: v for k, v in get_settings().model_dump().items() if k.startswith("recommender_")}}
    (args.out / "serving.json").write_text(json.dumps(out, indent=2, default=str))
    (args.out / "serving.md").write_text(markdown(out))
    plot(results, args.out / "serving.png")
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out}/serving.json, serving.md, serving.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
