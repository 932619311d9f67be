"""`python -m monitoring.drift`: the drift monitor (Evidently 0.7 on served traffic).

    loop   (make drift)       compare every closed window, serve /metrics and the Alertmanager
                              webhook on DRIFT_METRICS_PORT, until SIGINT/SIGTERM
    once   (make drift-once)  compare the closed windows not handled yet, print one JSON line each
    eval   (make drift-eval)  the offline study: false-alarm rate on no-drift windows, detection delay
                              per simulator scenario -> artifacts/drift/eval.json
    ui     (make drift-ui)    `evidently ui` over the workspace, with DO_NOT_TRACK=1

Settings: DRIFT_* in .env (minirec/settings.py). Reference: DRIFT_REFERENCE_DIR
(`make train` writes it). Audit log: DRIFT_DIR/decisions.jsonl.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")  # before anything imports evidently


def build(s, *, trigger_on: bool = True, metrics_on: bool = True):
    """(job, metrics, trigger) from the settings."""
    from minirec.settings import REPO_ROOT
    from monitoring.drift.features import OnlineFeatures
    from monitoring.drift.job import DriftConfig, DriftJob
    from monitoring.drift.metrics import DriftMetrics
    from monitoring.drift.trigger import AuditLog, Retrainer, Trigger, TriggerConfig

    cfg = DriftConfig.from_settings(s)
    metrics = DriftMetrics(trigger_windows=s.drift_trigger_windows) if metrics_on else None
    trigger = None
    if trigger_on:
        trigger = Trigger(TriggerConfig(s.drift_trigger_windows, s.drift_cooldown_s, s.drift_dry_run),
                          cfg.state_dir / "trigger.json", AuditLog(cfg.state_dir / "decisions.jsonl"),
                          Retrainer(command=s.drift_train_command, cwd=REPO_ROOT, log_dir=cfg.state_dir,
                                    airflow_url=s.drift_airflow_url, dag=s.drift_airflow_dag,
                                    user=s.drift_airflow_user, password=s.drift_airflow_password),
                          on_action=(lambda a: metrics.decisions.labels(a).inc()) if metrics else None)
    lookup = OnlineFeatures(s.feature_repo_path, s.feast_project, s.redis_host, s.redis_port)
    return DriftJob(cfg, lookup, metrics, trigger), metrics, trigger


def cmd_loop(s, a) -> int:
    from monitoring.drift.server import serve

    job, metrics, trigger = build(s)
    httpd = serve(s.drift_metrics_host, s.drift_metrics_port, metrics.registry, trigger)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log = logging.getLogger("drift")
    log.info("drift monitor: lake %s, reference %s, windows of %.0f s; /metrics and POST /alerts on %s:%s; "
             "trigger mode %s%s", job.cfg.lake_dir, job.cfg.reference_dir, job.cfg.window_s, s.drift_metrics_host,
             s.drift_metrics_port, s.drift_trigger_mode, " (dry run)" if s.drift_dry_run else "")
    while not stop.is_set():
        try:
            for rep in job.run_once():
                print(json.dumps(rep.summary(), default=str), flush=True)
        except FileNotFoundError as exc:  # no reference yet: say so and keep serving
            log.warning("%s", exc)
        except Exception:  # noqa: BLE001 - a bad window must not stop the monitor; it is logged and retried
            log.exception("drift pass failed; retrying in %.0f s", s.drift_interval_s)
            metrics.windows.labels("error").inc()
        stop.wait(s.drift_interval_s)
    httpd.shutdown()
    return 0


def cmd_once(s, a) -> int:
    if a.lateness is not None:
        s = s.model_copy(update={"drift_lateness_s": a.lateness})
    job, _, _ = build(s, metrics_on=False)
    try:
        reps = job.run_once(max_windows=a.max_windows)
    except FileNotFoundError as exc:
        print(f"drift: {exc}", file=sys.stderr)
        return 2
    for rep in reps:
        print(json.dumps(rep.summary(), default=str))
    if not reps:
        print(f"drift: no closed window with impressions in {job.cfg.lake_dir} since the last one handled "
              "(run the simulator, or wait DRIFT_WINDOW_S + DRIFT_LATENESS_S)", file=sys.stderr)
    return 0


def cmd_eval(s, a) -> int:
    from monitoring.drift.compare import Methods
    from monitoring.drift.reference import build_reference
    from monitoring.drift.study import Study, evaluate

    ref_dir, data_dir = Path(a.reference or s.drift_reference_path), Path(a.data_dir or s.data_path / "ml-100k")
    if not (ref_dir / "features.parquet").exists():
        ref_dir = build_reference(data_dir, s.artifacts_path / "drift" / "stand_in_reference")
        print(f"drift-eval: no reference from `make train`; built a stand-in one in {ref_dir}", file=sys.stderr)
    t0 = time.perf_counter()
    study = Study(ref_dir, data_dir, window=a.window, seed=a.seed)
    result = evaluate(study, Methods.from_settings(s), n_null=a.null_windows, engine=a.engine,
                      baseline_windows=s.drift_baseline_windows)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    out = s.artifacts_path / "drift" / "eval.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps({k: v for k, v in result.items() if k != "scenarios"}, default=str))
    for name, r in result["scenarios"].items():
        print(f"{name}: detected={r['detected']} delay_windows={r['delay_windows']} groups={r['groups_at_detection']}")
    print(f"-> {out}")
    return 0


def cmd_ui(s, a) -> int:
    ws = s.drift_path / "workspace"
    ws.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("evidently")
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    print(f"Evidently UI on http://127.0.0.1:{s.drift_ui_port} (workspace {ws})", flush=True)
    os.execve(exe, [str(exe), "ui", "--workspace", str(ws), "--host", "127.0.0.1", "--port", str(s.drift_ui_port)],
              env)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m monitoring.drift", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("loop", help="compare windows forever; serve /metrics and the webhook")
    o = sub.add_parser("once", help="compare the closed windows not handled yet")
    o.add_argument("--lateness", type=float, help="seconds after a window's end before it is read "
                                                  "(default DRIFT_LATENESS_S; 0 reads a window as soon as it ends)")
    o.add_argument("--max-windows", type=int, default=50)
    e = sub.add_parser("eval", help="no-drift and scenario study -> artifacts/drift/eval.json")
    e.add_argument("--reference", help="reference folder (default DRIFT_REFERENCE_DIR; a stand-in is built "
                                       "from the data when it has no features.parquet)")
    e.add_argument("--data-dir", help="MovieLens-shaped folder (default DATA_DIR/ml-100k)")
    e.add_argument("--window", type=int, default=500, help="impressions per study window")
    e.add_argument("--null-windows", type=int, default=40)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--engine", choices=["stattest", "report"], default="stattest",
                   help="stattest: Evidently's stat tests without rendering (same verdicts, ~15x faster)")
    sub.add_parser("ui", help="evidently ui over DRIFT_DIR/workspace (DO_NOT_TRACK=1)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from minirec.settings import get_settings

    return {"loop": cmd_loop, "once": cmd_once, "eval": cmd_eval, "ui": cmd_ui}[a.cmd](get_settings(), a)


if __name__ == "__main__":
    sys.exit(main())
