"""Retraining trigger: sustained drift -> one retrain per episode, cooldown, dry run, audit log.

    job window (drifted?) --streak--> drift_consecutive_drifted_windows gauge
        --Prometheus rule DriftSustained (>= drift_trigger_windows, for: 30s)--> Alertmanager
        --POST /alerts (webhook)--> decide(...) --> Retrainer.run (Airflow REST API | native command)
    (DRIFT_TRIGGER_MODE=job: the loop calls decide(...) itself when the streak reaches N)

`decide` is a pure function of (state, sustained?, episode id, now, config):
    not sustained                   -> "none" (an episode that was fired is over; the next one may fire)
    sustained, episode already fired -> "already_fired"  (once per episode, however often it is repeated)
    sustained, within the cooldown   -> "cooldown"       (tried again on the next sustained signal)
    sustained, dry run               -> "dry_run"        (recorded like a trigger; nothing is started)
    sustained                        -> "trigger"
An episode is the streak's first window (job mode) or the alert's fingerprint and
start time (Alertmanager mode). Every decision is one JSON line in decisions.jsonl.
The retrain is an ordinary training run: the pipeline's quality gate and release
decide whether its model replaces production.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class TriggerConfig:
    windows: int = 3  # sustained = this many drifted windows in a row
    cooldown_s: float = 3600.0
    dry_run: bool = False


@dataclass(frozen=True)
class TriggerState:
    fired_episode: str | None = None  # the episode that was triggered (or dry-run triggered)
    last_trigger_at: float | None = None  # unix seconds of the last trigger (dry runs included)


def decide(state: TriggerState, *, sustained: bool, episode: str | None, now: float,
           cfg: TriggerConfig) -> tuple[TriggerState, str]:
    """(new state, action); see the module docstring for the rules."""
    if not sustained:
        return replace(state, fired_episode=None), "none"
    if episode is not None and episode == state.fired_episode:
        return state, "already_fired"
    if state.last_trigger_at is not None and now - state.last_trigger_at < cfg.cooldown_s:
        return state, "cooldown"
    return TriggerState(fired_episode=episode, last_trigger_at=now), "dry_run" if cfg.dry_run else "trigger"


def streak(previous: int, drifted: bool) -> int:
    """Drifted windows in a row, this one included."""
    return previous + 1 if drifted else 0


class AuditLog:
    """decisions.jsonl: one line per decision (window, scores, streak, source, action, result)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def write(self, record: dict) -> dict:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = {"time": time.time(), **record}
        with self.path.open("a") as f:
            f.write(json.dumps(line, default=str) + "\n")
        return line

    def read(self) -> list[dict]:
        return [json.loads(x) for x in self.path.read_text().splitlines()] if self.path.exists() else []


@dataclass(frozen=True)
class Retrainer:
    """Starts a training run: Airflow's REST API when `airflow_url` is set, else `command` natively."""

    command: str
    cwd: Path
    log_dir: Path
    airflow_url: str = ""
    dag: str = "train_two_tower"
    user: str = "admin"
    password: str = ""

    def run(self, reason: dict) -> dict:
        return self._airflow(reason) if self.airflow_url else self._native(reason)

    def _native(self, reason: dict) -> dict:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"retrain-{time.strftime('%Y%m%dT%H%M%S')}.log"
        with log.open("w") as out:
            out.write(f"# drift retrain: {json.dumps(reason, default=str)}\n# $ {self.command}\n")
            out.flush()
            proc = subprocess.Popen(shlex.split(self.command), cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        return {"via": "native", "command": self.command, "pid": proc.pid, "log": str(log)}

    def _password(self) -> str:
        if self.password:
            return self.password
        f = self.cwd / "run" / "airflow" / "simple_auth_manager_passwords.json.generated"
        return json.loads(f.read_text()).get(self.user, "") if f.exists() else ""

    def _airflow(self, reason: dict) -> dict:
        import httpx

        base = self.airflow_url.rstrip("/")
        with httpx.Client(timeout=10) as http:
            tok = http.post(f"{base}/auth/token", json={"username": self.user, "password": self._password()})
            tok.raise_for_status()
            auth = {"Authorization": f"Bearer {tok.json()['access_token']}"}
            http.patch(f"{base}/api/v2/dags/{self.dag}", json={"is_paused": False}, headers=auth).raise_for_status()
            r = http.post(f"{base}/api/v2/dags/{self.dag}/dagRuns", headers=auth,
                          # a drift retrain learns from the live traffic: the rolling protocol (base + lake)
                          json={"logical_date": None, "conf": {"reason": "drift", "protocol": "rolling", **reason}})
            r.raise_for_status()
            return {"via": "airflow", "dag": self.dag, "dag_run_id": r.json().get("dag_run_id")}


class Trigger:
    """decide + act + audit, with the state kept in a JSON file (survives restarts)."""

    def __init__(self, cfg: TriggerConfig, state_path: Path, audit: AuditLog, retrainer: Retrainer,
                 on_action=None):
        self.cfg, self.state_path, self.audit, self.retrainer = cfg, Path(state_path), audit, retrainer
        self.on_action = on_action  # callback(action) for the metrics

    def state(self) -> TriggerState:
        if self.state_path.exists():
            return TriggerState(**json.loads(self.state_path.read_text()))
        return TriggerState()

    def _save(self, st: TriggerState) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(st)))
        tmp.replace(self.state_path)

    def signal(self, *, sustained: bool, episode: str | None, source: str, context: dict,
               now: float | None = None) -> dict:
        """One decision: returns the audit record (with `result` when a retrain was started)."""
        now = time.time() if now is None else now
        st, action = decide(self.state(), sustained=sustained, episode=episode, now=now, cfg=self.cfg)
        result = None
        if action == "trigger":
            try:
                result = self.retrainer.run({"episode": episode, "source": source})
            except Exception as exc:  # noqa: BLE001 - an unreachable Airflow is audited, not fatal
                action, result = "trigger_failed", {"error": f"{type(exc).__name__}: {exc}"}
                st = replace(st, fired_episode=None, last_trigger_at=self.state().last_trigger_at)
        self._save(st)
        if self.on_action:
            self.on_action(action)
        return self.audit.write({"source": source, "episode": episode, "sustained": sustained, "action": action,
                                 "dry_run": self.cfg.dry_run, "result": result, **context})
