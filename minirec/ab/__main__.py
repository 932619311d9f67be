"""`python -m minirec.ab report|validate` (`make ab-report EXP=...`, `make ab-validate`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def report(argv: list[str]) -> int:
    from minirec.ab import readout as ro
    from minirec.ab import report as rp
    from minirec.ab.config import ConfigError, load
    from minirec.ab.data import ReadoutError, load_events
    from minirec.settings import get_settings

    s = get_settings()
    p = argparse.ArgumentParser(prog="python -m minirec.ab report", description=ro.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", help="experiment name, as in the experiments file")
    p.add_argument("--lake", type=Path, default=s.stream_lake_path, help="event lake (default %(default)s)")
    p.add_argument("--experiments", type=Path, default=s.assignment_experiments_path,
                   help="experiments file: the weights the SRM check expects (default %(default)s)")
    p.add_argument("--base-interactions", type=Path, default=s.data_path / "ml-100k" / "interactions.parquet",
                   help="interactions before the lake (pre-period activity for CUPED; default %(default)s)")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--looks", type=int, default=10, help="sequential looks over the run (default %(default)s)")
    p.add_argument("--out", type=Path, default=None, help="folder (default artifacts/ab/<experiment>)")
    a = p.parse_args(argv)
    try:
        spec = load(a.experiments).experiments.get(a.experiment)
        if spec is None:
            raise ReadoutError(f"experiment {a.experiment!r} is not in {a.experiments}")
        r = ro.readout(load_events(a.lake, a.experiment, a.base_interactions), spec, a.alpha, a.looks)
    except (ConfigError, ReadoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = a.out or s.artifacts_path / "ab" / a.experiment
    command = "make ab-report EXP=" + a.experiment
    paths = rp.write(r, out, command)
    print(rp.markdown(r, command).split("\n\n")[1])
    print("wrote " + ", ".join(map(str, paths)))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("report", "validate"):
        print(__doc__ + "\n  report EXPERIMENT [--lake DIR] ...   readout -> artifacts/ab/<experiment>/\n"
              "  validate [--out FILE]                simulation studies -> artifacts/ab/validation.json",
              file=sys.stderr)
        return 2
    if argv[0] == "report":
        return report(argv[1:])
    from minirec.ab.validate import main as validate

    return validate(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
