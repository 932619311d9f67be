"""`python -m services.explorer` (started by `make stack`): the explorer page on uvicorn.

One page per user: rating history with titles, the recommendations of each arm with scores, the
variant the assignment service gives, per-stage latency, online features with their age, the A/B
readout and the drift status. It talks to the other services over HTTP only. SIGTERM / SIGINT stop
it after the queued click events are handed to Kafka (up to 3 s).
"""

from __future__ import annotations

import argparse
import logging


def parser() -> argparse.ArgumentParser:
    from services.explorer.settings import ExplorerConfig

    cfg = ExplorerConfig.from_settings()
    p = argparse.ArgumentParser(prog="python -m services.explorer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=cfg.host, help="bind address (default EXPLORER_HOST=%(default)s)")
    p.add_argument("--port", type=int, default=cfg.port, help="port (default EXPLORER_PORT=%(default)s)")
    p.add_argument("--log-level", default="warning", help="uvicorn log level (default %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    import dataclasses

    import uvicorn

    from services.explorer.app import create_app
    from services.explorer.settings import ExplorerConfig

    a = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # the click log warns once by itself
    cfg = dataclasses.replace(ExplorerConfig.from_settings(), host=a.host, port=a.port)
    logging.getLogger("explorer").info("explorer on http://%s:%s (recommender %s, assignment %s)",
                                       cfg.host, cfg.port, cfg.recommender_url, cfg.assignment_url)
    uvicorn.run(create_app(cfg), host=cfg.host, port=cfg.port, log_level=a.log_level,
                access_log=False, timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
