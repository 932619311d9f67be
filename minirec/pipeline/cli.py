"""`python -m minirec.pipeline`: run the pipeline, one step, promote by hand, list models and stage history."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys

from minirec.pipeline.steps import STEP_TABLE, STEPS, run, run_step
from minirec.settings import get_settings

PROTOCOLS = ("fixed", "rolling")  # minirec.pipeline.protocol.PROTOCOLS (not imported: keeps --help light)

EPILOG = "steps, in order:\n" + "\n".join(f"  {s.name:<19} {s.doc}" for s in STEP_TABLE)


def _parser() -> argparse.ArgumentParser:
    from minirec import pipeline

    p = argparse.ArgumentParser(prog="python -m minirec.pipeline", description=pipeline.__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for cmd, text in (("run", "run every step (or all but --skip) under a new run id"),
                      ("step", "run one step of an existing run (--run-id required)")):
        sp = sub.add_parser(cmd, help=text, description=text)
        if cmd == "step":
            sp.add_argument("name", choices=STEPS)
        sp.add_argument("--run-id", required=cmd == "step",
                        help="run folder / registry version (default: a new YYYYMMDD-HHMMSS-<hash> id)")
        sp.add_argument("--window-end", help="ISO time; ignore interactions at or after it")
        sp.add_argument("--epochs", type=int, help="training epochs (default from TrainConfig)")
        sp.add_argument("--seed", type=int, help="training seed")
        sp.add_argument("--no-promote", action="store_true", help="register as candidate only; promote by hand later")
        sp.add_argument("--protocol", choices=PROTOCOLS,
                        help="fixed: base MovieLens, fixed temporal split (the benchmark); rolling: base + the "
                             "stream's lake, newest window held out (the loop retrain); default TRAIN_PROTOCOL")
        if cmd == "run":
            sp.add_argument("--skip", nargs="*", default=[], choices=STEPS, help="steps to skip")
    pp = sub.add_parser("promote", help="make a registered model production (recorded in the stage log)")
    pp.add_argument("tag", help="e.g. two_tower:20261202-150102-a1b2c3")
    pp.add_argument("--reason", default="manual promotion", help="why, for the stage log")
    sub.add_parser("models", help="registry entries with stage, validation NDCG@10 and content identity")
    sub.add_parser("history", help="the stage log: every registration, promotion and archival")
    sub.add_parser("mlflow", help="the MLflow UI over the tracked runs (MLFLOW_TRACKING_URI) on "
                                  "MLFLOW_HOST:MLFLOW_PORT, in the foreground (`make mlflow`)")
    return p


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    s = get_settings()
    if a.cmd == "promote":
        from minirec.train.registry import promote

        print(promote(s.model_store_path, a.tag, by=getpass.getuser(), reason=a.reason))
        return 0
    if a.cmd == "models":
        from minirec.train.registry import list_models

        for m in list_models(s.model_store_path, s.model_name):
            print(f"{m.tag:<40} {m.stage:<11} valid_ndcg@10={m.metadata.get('valid_ndcg@10')} {m.identity} "
                  f"mlflow={m.labels.get('mlflow_run_id', '-')}")
        return 0
    if a.cmd == "history":
        from minirec.train.registry import history

        for r in history(s.model_store_path, s.model_name):
            print(f"{r['at']}  {r['tag']:<40} -> {r['stage']:<11} by {r['by']}: {r['reason']}")
        return 0
    if a.cmd == "mlflow":
        from minirec.pipeline.tracking import SERVER_ENV, TrackingError, server_argv

        try:
            argv = server_argv(s)
        except TrackingError as exc:
            print(f"make mlflow: {exc}", file=sys.stderr)
            return 2
        print(f"MLflow UI on http://{s.mlflow_host}:{s.mlflow_port} (store {argv[3]}); Ctrl-C stops it", flush=True)
        os.execve(argv[0], argv, {**os.environ, **SERVER_ENV})
    from minirec.pipeline.context import RunContext

    train_over = {k: v for k, v in {"epochs": a.epochs, "seed": a.seed}.items() if v is not None}
    over = {"protocol": a.protocol} if a.protocol else {}
    ctx = RunContext.from_settings(run_id=a.run_id, window_end=a.window_end, train=train_over,
                                   auto_promote=not a.no_promote, **over)
    if a.cmd == "step":
        run_step(a.name, ctx)
    else:
        run(ctx, [s_ for s_ in STEPS if s_ not in a.skip])
    print(json.dumps({"run_id": ctx.run_id, "run_dir": str(ctx.run_dir), "latest": str(ctx.latest_dir)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
