"""`python -m services.stream` (`make stream`): run the processor in the foreground.

SIGTERM / SIGINT: the batch in flight is finished and committed, then the
consumer leaves the group and the process exits 0. A batch stuck in a retry
(Redis down) is abandoned uncommitted, to be replayed on the next start.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from services.stream.settings import StreamConfig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m services.stream", description=__doc__.splitlines()[0])
    p.add_argument("--no-metrics", action="store_true", help="do not serve /metrics on STREAM_METRICS_PORT")
    p.add_argument("--exit-when-idle", type=float, default=None, metavar="S",
                   help="exit after S seconds without records (benchmarks, one-shot catch-up)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("stream")

    cfg = StreamConfig.from_settings()
    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("signal %s: finishing the batch in flight, then committing and closing", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    from services.stream.app import build

    app = build(cfg)
    if not a.no_metrics:
        app.metrics.serve(cfg.metrics_port, cfg.metrics_host)
    log.info("consuming %s as group %s from %s; online store %s:%s project %s; lake %s; metrics :%s",
             ",".join(cfg.topics), cfg.group_id, cfg.bootstrap, cfg.redis_host, cfg.redis_port,
             cfg.feast_project, cfg.lake_dir, "off" if a.no_metrics else cfg.metrics_port)
    try:
        app.processor.run(stop, max_idle_s=a.exit_when_idle)
    finally:
        app.close()
    log.info("stopped cleanly")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
