"""The retraining decision: once per sustained episode, cooldown, dry run; and the audit trail."""

from __future__ import annotations

import sys

from monitoring.drift.trigger import (
    AuditLog,
    Retrainer,
    Trigger,
    TriggerConfig,
    TriggerState,
    decide,
    streak,
)


def run(signals, cfg, t0=0.0, step=60.0):
    """Feed (sustained, episode) pairs one per `step` seconds; returns the actions."""
    st, out = TriggerState(), []
    for i, (sustained, episode) in enumerate(signals):
        st, action = decide(st, sustained=sustained, episode=episode, now=t0 + i * step, cfg=cfg)
        out.append(action)
    return out


def test_fires_once_per_sustained_episode():
    cfg = TriggerConfig(windows=3, cooldown_s=0)
    acts = run([(False, None), (True, "e1"), (True, "e1"), (True, "e1"), (False, None), (True, "e2")], cfg)
    assert acts == ["none", "trigger", "already_fired", "already_fired", "none", "trigger"]


def test_cooldown_blocks_a_new_episode_until_it_expires():
    cfg = TriggerConfig(windows=3, cooldown_s=300)
    # one signal a minute: trigger at t=0, the episode ends at 60, a new one is held back at 120..240
    # (within 300 s of the trigger) and fires at t=300; then it has fired
    acts = run([(True, "e1"), (False, None)] + [(True, "e2")] * 5, cfg)
    assert acts == ["trigger", "none", "cooldown", "cooldown", "cooldown", "trigger", "already_fired"]


def test_dry_run_decides_like_a_trigger_but_is_labelled_dry_run():
    cfg = TriggerConfig(windows=3, cooldown_s=0, dry_run=True)
    assert run([(True, "e1"), (True, "e1"), (False, None), (True, "e2")], cfg) == \
        ["dry_run", "already_fired", "none", "dry_run"]


def test_streak_counts_drifted_windows_in_a_row():
    n, seen = 0, []
    for d in [True, True, False, True, True, True]:
        n = streak(n, d)
        seen.append(n)
    assert seen == [1, 2, 0, 1, 2, 3]


def _trigger(tmp_path, dry_run: bool):
    marker = tmp_path / "retrain-ran"
    cmd = f"{sys.executable} -c \"open('{marker}', 'w').write('x')\""
    return Trigger(TriggerConfig(3, 3600, dry_run), tmp_path / "trigger.json", AuditLog(tmp_path / "audit.jsonl"),
                   Retrainer(command=cmd, cwd=tmp_path, log_dir=tmp_path)), marker


def _wait_for(path, timeout_s=20.0) -> bool:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return False


def test_dry_run_starts_nothing_and_audits_the_decision(tmp_path):
    trig, marker = _trigger(tmp_path, dry_run=True)
    rec = trig.signal(sustained=True, episode="e1", source="test", context={"window": "w1"})
    assert rec["action"] == "dry_run" and rec["result"] is None
    assert not list(tmp_path.glob("retrain-*.log"))  # no process was started, so no retrain log exists
    assert [r["action"] for r in trig.audit.read()] == ["dry_run"]
    assert trig.audit.read()[0]["window"] == "w1"


def test_trigger_runs_the_retrain_command_once_and_survives_a_restart(tmp_path):
    trig, marker = _trigger(tmp_path, dry_run=False)
    first = trig.signal(sustained=True, episode="e1", source="test", context={})
    assert first["action"] == "trigger" and first["result"]["via"] == "native"
    assert _wait_for(marker)  # the command really ran
    again, _ = _trigger(tmp_path, dry_run=False)  # a new process reads the saved state
    assert again.signal(sustained=True, episode="e1", source="test", context={})["action"] == "already_fired"
    assert again.signal(sustained=True, episode="e2", source="test", context={})["action"] == "cooldown"
    assert [r["action"] for r in again.audit.read()] == ["trigger", "already_fired", "cooldown"]


def test_unreachable_airflow_is_audited_and_the_episode_can_fire_again(tmp_path):
    from minirec.infra.process import free_port

    trig = Trigger(TriggerConfig(3, 3600, False), tmp_path / "t.json", AuditLog(tmp_path / "a.jsonl"),
                   Retrainer(command="true", cwd=tmp_path, log_dir=tmp_path,
                             airflow_url=f"http://127.0.0.1:{free_port()}", password="x"))
    rec = trig.signal(sustained=True, episode="e1", source="test", context={})
    assert rec["action"] == "trigger_failed" and "Connect" in rec["result"]["error"]
    assert trig.state().fired_episode is None and trig.state().last_trigger_at is None
