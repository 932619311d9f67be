"""`minirec` command line: thin wrappers over the core functions.

    minirec data                 fetch MovieLens-100K into data/ml-100k (idempotent)
    minirec synth --users N ...  write a synthetic dataset with the same schema
    minirec up | down | status   native Kafka, Redis, Prometheus on 127.0.0.1 (status --memory: RSS/PSS)
    minirec up-apps              stream, recommender, assignment, drift monitor, explorer in the background
    minirec summary              print the data and service summary (make demo)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from minirec.settings import get_settings


def _cmd_data(args: argparse.Namespace) -> int:
    from minirec.data.movielens import fetch_movielens

    s = get_settings()
    folder = fetch_movielens(s.data_path, force=args.force)
    manifest = json.loads((folder / "manifest.json").read_text())
    print(f"MovieLens-100K ready in {folder}: {manifest['rows']}")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:

    from minirec.data.synthetic import SyntheticConfig, generate

    s = get_settings()
    out = Path(args.out) if args.out else s.data_path / f"synthetic-{args.users}x{args.items}"
    counts = generate(SyntheticConfig(n_users=args.users, n_items=args.items,
                                      mean_interactions=args.mean_interactions, seed=args.seed), out)
    print(f"synthetic dataset in {out}: {counts}")
    return 0


def _cmd_fetch_kafka(_: argparse.Namespace) -> int:
    from minirec.infra.kafka import pom_version, resolve_jars
    from minirec.infra.stack import kafka_libs

    libs = resolve_jars(kafka_libs(get_settings()))
    print(f"Apache Kafka {pom_version()} jars in {libs} (JMX exporter agent in {libs / 'agent'})")
    return 0


def _cmd_up(_: argparse.Namespace) -> int:
    from minirec.infra import stack

    stack.up(get_settings())
    return 0


def _cmd_up_apps(_: argparse.Namespace) -> int:
    from minirec.infra import stack

    stack.up_apps(get_settings())
    return 0


def _cmd_down(_: argparse.Namespace) -> int:
    from minirec.infra import stack

    stack.down(get_settings())
    return 0


def _print_status() -> bool:
    from minirec.infra import stack

    rows = stack.status(get_settings())
    print(f"{'service':<15}{'pid':>8}  {'ports':<19}{'state':<10}log")
    for r in rows:
        state = "healthy" if r["healthy"] else ("unhealthy" if r["running"] else "stopped")
        ports = ",".join(map(str, r["ports"]))
        print(f"{r['name']:<15}{r['pid'] or '-':>8}  {ports:<19}{state:<10}{r['log']}")
    # apps (the stream processor) count only when started: `make up` alone is a healthy stack
    return all(r["healthy"] for r in rows if r["running"] or not r.get("optional"))


def _cmd_probe(args: argparse.Namespace) -> int:
    from minirec.infra import stack
    from minirec.infra.kafka import kafka_topics

    s = get_settings()
    result = stack.probe(s, timeout_s=args.timeout, names=args.services)
    for name, ok in result.items():
        print(f"{name:<{max(12, len(name) + 1)}}{'healthy' if ok else 'NOT healthy'}")
    if args.topics and result.get("kafka"):
        import time

        deadline = time.monotonic() + args.timeout
        missing = set(s.topics)
        while missing and time.monotonic() < deadline:
            missing = set(s.topics) - kafka_topics(s.kafka_bootstrap)
            time.sleep(0 if not missing else 2)
        print(f"topics      {'all present' if not missing else 'missing ' + ', '.join(sorted(missing))}")
        if missing:
            return 1
    return 0 if all(result.values()) else 1


def _print_memory() -> float:
    """Per-service memory of the running stack and the total; returns the total PSS in MiB."""
    from minirec.infra import stack

    rows = stack.memory(get_settings())
    print(f"{'service':<12}{'procs':>6}{'RSS MiB':>10}{'PSS MiB':>10}")
    for r in rows:
        print(f"{r['name']:<12}{r['processes']:>6}{r['rss_mib']:>10.0f}{r['pss_mib']:>10.0f}")
    rss, pss = sum(r["rss_mib"] for r in rows), sum(r["pss_mib"] for r in rows)
    print(f"{'total':<12}{sum(r['processes'] for r in rows):>6}{rss:>10.0f}{pss:>10.0f}   "
          f"(= {pss / 1024:.2f} GiB PSS; RSS counts shared pages once per process)")
    return pss


def _cmd_status(args: argparse.Namespace) -> int:
    ok = _print_status()
    if args.memory:
        _print_memory()
    return 0 if ok else 1


def _cmd_summary(_: argparse.Namespace) -> int:
    from minirec.data.movielens import dataset_dir, load

    s = get_settings()
    tables = load(dataset_dir(s.data_path))
    inter = tables["interactions"]
    print("MovieLens-100K")
    print(f"  users {len(tables['users']):,}  items {len(tables['items']):,}  interactions {len(inter):,}")
    print(f"  events {inter.event_timestamp.min():%Y-%m-%d} .. {inter.event_timestamp.max():%Y-%m-%d}; "
          f"density {len(inter) / (len(tables['users']) * len(tables['items'])):.2%}")
    print("Services")
    ok = _print_status()
    print(f"  Kafka {s.kafka_bootstrap} topics {', '.join(s.topics)}")
    print(f"  Redis {s.redis_url}   Prometheus {s.prometheus_url}")
    metrics_file = s.artifacts_path / "latest" / "metrics.json"
    if metrics_file.exists():
        metrics = json.loads(metrics_file.read_text())
        protocol = metrics.pop("protocol", "fixed")  # the other keys are models
        print(f"Latest training run (test split, {protocol} protocol, {metrics_file})")
        print(f"  {'model':<16}{'NDCG@10':>9}{'Recall@10':>11}{'MRR@10':>9}")
        for name, m in sorted(metrics.items(), key=lambda kv: -kv[1].get("ndcg@10", 0)):
            print(f"  {name:<16}{m.get('ndcg@10', float('nan')):>9.4f}{m.get('recall@10', float('nan')):>11.4f}"
                  f"{m.get('mrr@10', float('nan')):>9.4f}")
    else:
        print("No training run yet: `make train`")
    _print_loop(s)
    return 0 if ok else 1


def _print_loop(s) -> None:
    """What the running loop produced so far and where to look (the end of `make demo`)."""
    from minirec.infra import stack

    running = {r["name"] for r in stack.status(s) if r["running"]}
    lake = s.stream_lake_path
    counts = {t: _parquet_rows(lake / t) for t in ("interactions", "impressions", "exposures")}
    print(f"Event lake {lake}: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    if running & {"stream", "recommender", "assignment", "drift", "explorer"}:
        print("Memory of the running stack (every process it started)")
        _print_memory()
    url = s.recommender_url
    print("Where to look")
    if "explorer" in running:
        print(f"  explorer page   {s.explorer_url}/?user=196   (pick a user; click a film = an Interaction on Kafka)")
    print(f"  Prometheus      {s.prometheus_url}/alerts   (recommender, assignment, stream, drift are scraped)")
    print(f"  recommender     curl -s -X POST {url}/recommend -H 'content-type: application/json' "
          "-d '{\"user_id\": 196, \"k\": 5, \"timings\": true}'")
    report = s.artifacts_path / "ab" / s.explorer_experiment / "report.md"
    print(f"  A/B readout     make ab-report EXP={s.explorer_experiment}"
          + (f"   (last: {report})" if report.exists() else ""))
    print(f"  drift report    make drift-once   (state and HTML reports of drifted windows in {s.drift_path})")
    print("  more traffic    make simulate ARGS=\"--duration-s 120 --speedup 1e9\"")
    print("  load test       make bench-serving   (Locust: batching on / off / framework floor)")
    print("  stop            make down            (every process above; data under run/ is kept)")


def _parquet_rows(folder: Path) -> int:
    """Rows in every parquet part under `folder` (footers only; 0 when the folder does not exist)."""
    import pyarrow.parquet as pq

    total = 0
    for part in folder.rglob("*.parquet") if folder.is_dir() else []:
        if not part.name.startswith("."):
            try:
                total += pq.ParquetFile(part).metadata.num_rows
            except OSError:
                pass
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="minirec", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("data", help="fetch MovieLens-100K (recbole wheel) into canonical parquet")
    p.add_argument("--force", action="store_true", help="re-download and rewrite even if present")
    p.set_defaults(fn=_cmd_data)
    p = sub.add_parser("synth", help="write a seeded synthetic dataset with the same schema")
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--items", type=int, default=2_000)
    p.add_argument("--mean-interactions", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output folder (default data/synthetic-<users>x<items>)")
    p.set_defaults(fn=_cmd_synth)
    p = sub.add_parser("probe", help="wait until each service answers its health check (no pid files)")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait (default 180)")
    p.add_argument("--topics", action="store_true", help="also require every topic from .env")
    p.add_argument("--services", nargs="+", help="check only these (e.g. redis kafka prometheus); default all")
    p.set_defaults(fn=_cmd_probe)
    p = sub.add_parser("status", help="show pid, ports and health; exit 1 unless all healthy")
    p.add_argument("--memory", action="store_true", help="also the RSS and PSS of every process the stack started")
    p.set_defaults(fn=_cmd_status)
    for name, fn, text in [("up", _cmd_up, "start Redis, Kafka, Prometheus natively and wait until healthy"),
                           ("up-apps", _cmd_up_apps, "start the stream processor, recommender, assignment service, drift monitor and explorer in the background (after `make train`)"),
                           ("down", _cmd_down, "stop the apps and the native services (data is kept)"),
                           ("summary", _cmd_summary, "print the data and service summary"),
                           ("fetch-kafka", _cmd_fetch_kafka, "resolve the Kafka broker jars with Maven")]:
        sub.add_parser(name, help=text).set_defaults(fn=fn)
    args = parser.parse_args(argv)
    from minirec.data.movielens import DataError
    from minirec.infra.process import InfraError

    try:
        return args.fn(args)
    except (InfraError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
