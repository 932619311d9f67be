"""`python -m services.recommender [--floor]` (`make serve`): `bentoml serve` on the host and port
from the settings (RECOMMENDER_HOST / RECOMMENDER_PORT, or RECOMMENDER_FLOOR_PORT with --floor)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from minirec.settings import REPO_ROOT, get_settings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m services.recommender", description=__doc__)
    p.add_argument("--floor", action="store_true", help="serve the constant-returning floor service instead")
    a = p.parse_args(argv)
    s = get_settings()
    target = "services.recommender.floor:Floor" if a.floor else "services.recommender.service:Recommender"
    port = s.recommender_floor_port if a.floor else s.recommender_port
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "True", "PYTHONPATH": str(REPO_ROOT)}
    os.chdir(REPO_ROOT)
    os.execve(bentoml, [bentoml, "serve", target, "--host", s.recommender_host, "--port", str(port)], env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
