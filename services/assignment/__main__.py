"""`python -m services.assignment` (started by `make stack`): the A/B assignment service on uvicorn.

The experiments file is validated before the server binds: a bad file exits 2 with every problem
named by line and field (`--check` validates and exits without serving). SIGTERM / SIGINT stop it
after the Exposure events still queued are handed to Kafka (up to 3 s).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from minirec.ab.config import ConfigError


def parser() -> argparse.ArgumentParser:
    from services.assignment.settings import AssignmentConfig

    cfg = AssignmentConfig.from_settings()
    p = argparse.ArgumentParser(prog="python -m services.assignment", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=cfg.host, help="bind address (default ASSIGNMENT_HOST=%(default)s)")
    p.add_argument("--port", type=int, default=cfg.port, help="port (default ASSIGNMENT_PORT=%(default)s)")
    p.add_argument("--experiments", type=Path, default=cfg.experiments,
                   help="experiments file (default ASSIGNMENT_EXPERIMENTS=%(default)s)")
    p.add_argument("--check", action="store_true", help="validate the experiments file, print them, exit")
    p.add_argument("--log-level", default="warning", help="uvicorn log level (default %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    import dataclasses

    from minirec.ab.config import load
    from services.assignment.settings import AssignmentConfig

    a = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # kafka-python logs every failed reconnect at ERROR; the Exposure log warns once by itself
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    cfg = dataclasses.replace(AssignmentConfig.from_settings(), host=a.host, port=a.port, experiments=a.experiments)
    try:
        experiments = load(cfg.experiments)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if a.check:
        for e in experiments.experiments.values():
            print(f"{e.name}: {e.layer or '-'} {e.layer_range} {dict(e.variants)} coverage {e.coverage} "
                  f"audience {e.audience.value}")
        return 0

    import uvicorn

    from services.assignment.app import create_app
    from services.assignment.settings import UVICORN

    app = create_app(cfg, experiments)
    logging.getLogger("assignment").info("serving %d experiments from %s on %s:%s; exposures -> %s at %s",
                                         len(experiments.experiments), cfg.experiments, cfg.host, cfg.port,
                                         cfg.topic_exposures, cfg.bootstrap)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level=a.log_level, **UVICORN)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
