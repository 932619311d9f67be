"""`python -m services.simulator` (`make simulate ARGS="--users 500 --speedup 3600"`).

Replays the held-out period of the temporal split (the users and timestamps the
served model never saw) as live sessions: each asks the recommender for k
items, clicks by the position-based click model (services/simulator/clicks.py)
and sends the clicks as `Interaction` events to Kafka (key = user id).
Unreachable services are counted, not fatal; the summary names the fix.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from minirec.settings import get_settings


def parser() -> argparse.ArgumentParser:
    s = get_settings()
    p = argparse.ArgumentParser(
        prog="python -m services.simulator", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  make simulate ARGS=\"--users 500 --speedup 3600\"\n"
               "  make simulate ARGS=\"--dry-run --max-sessions 200 --speedup 1e9\"   # no Kafka, no waiting\n"
               "  make simulate ARGS=\"--scenario popularity_shock --duration-s 120\"")
    g = p.add_argument_group("what to replay")
    g.add_argument("--users", type=int, default=None, help="replay only the first N users of the held-out period")
    g.add_argument("--max-sessions", type=int, default=None, help="stop after N sessions")
    g.add_argument("--duration-s", type=float, default=None, help="stop after this many wall-clock seconds")
    g.add_argument("--speedup", type=float, default=s.simulator_speedup,
                   help="held-out seconds per wall second: a session at held-out time t starts at "
                        "start + (t - t0)/speedup (default SIMULATOR_SPEEDUP=%(default)s; 1e9 = no waiting)")
    g.add_argument("--session-gap-s", type=float, default=3600.0,
                   help="held-out ratings further apart than this start a new session (default %(default)s)")
    g.add_argument("--data-dir", type=Path, default=s.data_path / "ml-100k",
                   help="lake folder with interactions/items/users.parquet (default %(default)s)")
    g = p.add_argument_group("how users behave")
    g.add_argument("--k", type=int, default=s.simulator_k, help="items asked per session (default %(default)s)")
    g.add_argument("--seed", type=int, default=s.simulator_seed, help="click-model and scenario seed "
                   "(default %(default)s)")
    g.add_argument("--scenario", default="none", choices=["none", "genre_shift", "new_users", "popularity_shock"],
                   help="drift scenario (see services/simulator/scenarios.py; default %(default)s)")
    g.add_argument("--noise", type=float, default=0.02, help="attractiveness of an item the user did not rate "
                   "(default %(default)s)")
    g.add_argument("--max-attract", type=float, default=0.9, help="attractiveness of a 5-star next item "
                   "(default %(default)s)")
    g.add_argument("--ratings", action="store_true", help="also emit a rating event after clicking a next item")
    g.add_argument("--exclude-seen", action=argparse.BooleanOptionalAction, default=True,
                   help="ask the recommender to drop items the user has seen (default on: `make train` writes "
                        "seen-sets only up to the held-out period's start, and the stream adds each click)")
    g = p.add_argument_group("where")
    g.add_argument("--recommender-url", default=s.recommender_url, help="default %(default)s")
    g.add_argument("--kafka-bootstrap", default=s.kafka_bootstrap, help="default %(default)s")
    g.add_argument("--topic", default=s.topic_interactions, help="default %(default)s")
    g.add_argument("--assignment-url", default=s.assignment_url,
                   help="assignment service asked for each user's arm first (default %(default)s; '' = none)")
    g.add_argument("--experiment", default="ranker_v1",
                   help="experiment whose arm is requested from the recommender (default %(default)s; '' = none)")
    g.add_argument("--dry-run", action="store_true", help="send no events (no Kafka needed); count them")
    g.add_argument("--concurrency", type=int, default=s.simulator_concurrency,
                   help="sessions in flight at once (default %(default)s)")
    g.add_argument("--timeout-s", type=float, default=5.0, help="recommender request timeout (default %(default)s)")
    g.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    from services.simulator.simulate import SimulateError, simulate

    a = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = simulate(**{k: v for k, v in vars(a).items() if k not in ("json", "no_progress")},
                           progress=not a.no_progress)
    except SimulateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(summary.as_dict()))
    else:
        print(format_summary(summary))
    return 0


def format_summary(m) -> str:
    lines = [f"sessions {m.sessions} (skipped {m.skipped})  requests {m.requests}  shown {m.shown}  "
             f"clicks {m.clicks} (relevant {m.relevant_clicks}, organic {m.organic_clicks})  ratings {m.ratings}",
             f"CTR {m.ctr:.4f} per shown item, {m.list_ctr:.4f} of lists clicked  events {m.events}  "
             f"wall {m.wall_s:.1f} s",
             f"fallbacks {dict(m.fallbacks) or 0}  errors {dict(m.errors) or 0}"]
    for arm, c in sorted(m.by_variant.items()):
        lines.append(f"  arm {arm}: shown {c['shown']}  clicks {c['clicks']}  "
                     f"CTR {c['clicks'] / c['shown'] if c['shown'] else 0:.4f}")
    for kind, hint in m.error_hints.items():
        lines.append(f"  {kind}: {hint}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
