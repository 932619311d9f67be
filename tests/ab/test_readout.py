"""The readout over a real lake (written by the stream processor's LakeWriter) whose truth is known."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from minirec.ab import readout as ro
from minirec.ab import report
from minirec.ab.data import ExperimentEvents, ReadoutError, load_events, user_table
from minirec.events import Exposure, Impression, Interaction
from minirec.settings import REPO_ROOT
from services.stream.lake import LakeWriter

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
CTR = {"control": 0.05, "treatment": 0.08}


def build_lake(root, assigner, n_users: int = 1500, seed: int = 0, ctr=None):
    """Exposures, impressions (10 items per list) and clicks for users of ranker_v1; returns the truth."""
    ctr = ctr or CTR
    rng = np.random.default_rng(seed)
    events, truth = [], {"users": {}, "clicks": {}, "items": {}}
    for uid in range(1, n_users + 1):
        a = assigner.assign("ranker_v1", uid, T0)
        if not a.in_experiment:
            continue
        t = T0 + timedelta(seconds=float(rng.uniform(0, 3600)))
        # an impression before the exposure: must not count
        events.append(Impression(user_id=uid, event_time=t - timedelta(seconds=5), request_id=uuid.uuid4().hex,
                                 items=list(range(1, 11)), scores=[0.0] * 10, model_version="m", variant="control"))
        events.append(Exposure(user_id=uid, experiment="ranker_v1", variant=a.variant, event_time=t))
        truth["users"][a.variant] = truth["users"].get(a.variant, 0) + 1
        for s in range(int(rng.integers(1, 4))):
            ts = t + timedelta(seconds=10 * (s + 1))
            rid = uuid.uuid4().hex
            events.append(Impression(user_id=uid, event_time=ts, request_id=rid, items=list(range(1, 11)),
                                     scores=[0.0] * 10, model_version="m", variant=a.variant))
            truth["items"][a.variant] = truth["items"].get(a.variant, 0) + 10
            for pos in np.flatnonzero(rng.random(10) < ctr[a.variant]):
                events.append(Interaction(user_id=uid, item_id=int(pos) + 1, action="click", request_id=rid,
                                          position=int(pos), variant=a.variant, event_time=ts + timedelta(seconds=1)))
                truth["clicks"][a.variant] = truth["clicks"].get(a.variant, 0) + 1
        # an organic click (no list): must not count
        events.append(Interaction(user_id=uid, item_id=5, action="click", event_time=t + timedelta(seconds=99)))
    LakeWriter(root).write(events)
    return truth


def test_readout_counts_and_names_the_better_arm(tmp_path, assigner, experiments):
    truth = build_lake(tmp_path / "lake", assigner)
    ev = load_events(tmp_path / "lake", "ranker_v1")
    r = ro.readout(ev, experiments.experiments["ranker_v1"])
    for arm in ("control", "treatment"):
        a = r["arms"][arm]
        assert a["users"] == truth["users"][arm]
        assert a["impressions"] == truth["items"][arm] and a["clicks"] == truth["clicks"][arm]
        assert a["ctr"] == pytest.approx(truth["clicks"][arm] / truth["items"][arm])
    assert not r["srm"]["blocked"] and r["srm_p"] > 0.001
    assert r["decision"] == {"blocked": False, "winner": "treatment", "reason": r["decision"]["reason"]}
    e = r["effect"]
    assert e["method"] == "delta_method_z" and e["ci"][0] < e["diff"] < e["ci"][1] and e["p"] < 0.05
    assert 0.01 < e["diff"] < 0.05  # the truth is +0.03
    assert 0 < r["cuped_variance_ratio"] <= 1
    seq = r["sequential"]
    assert len(seq["looks"]) == 10 and seq["looks"][-1]["diff"] == pytest.approx(e["diff"])
    assert all(lk["confidence_sequence"][0] <= lk["ci"][0] for lk in seq["looks"])  # wider than fixed


def test_report_files_and_json_interface(tmp_path, assigner, experiments):
    build_lake(tmp_path / "lake", assigner, n_users=600)
    r = ro.readout(load_events(tmp_path / "lake", "ranker_v1"), experiments.experiments["ranker_v1"])
    paths = report.write(r, tmp_path / "out", "make ab-report EXP=ranker_v1")
    doc = json.loads(paths[0].read_text())
    for arm in doc["arms"].values():
        assert {"users", "impressions", "clicks", "ctr"} <= set(arm)
    assert {"ci", "p", "diff"} <= set(doc["effect"]) and "srm_p" in doc and "cuped_variance_ratio" in doc
    md = paths[1].read_text()
    assert "| control |" in md and "Sample ratio" in md and "report.png" in md
    assert paths[2].stat().st_size > 10_000 and paths[2].read_bytes()[:4] == b"\x89PNG"


def synthetic_events(n_control: int, n_treatment: int, seed: int = 0) -> ExperimentEvents:
    """A user table's worth of events without a lake (200k users in a second)."""
    rng = np.random.default_rng(seed)
    n = n_control + n_treatment
    uid = np.arange(1, n + 1)
    arm = np.array(["control"] * n_control + ["treatment"] * n_treatment)
    t0 = pd.Timestamp(T0) + pd.to_timedelta(rng.uniform(0, 3600, n), unit="s")
    exposed = pd.DataFrame({"user_id": uid, "arm": arm, "t0": t0})
    rid = np.array([uuid.UUID(int=int(i)).hex for i in uid])
    imps = pd.DataFrame({"user_id": uid, "ts": t0 + pd.Timedelta(seconds=1), "request_id": rid, "n_items": 10,
                         "served": arm})
    clicked = rng.random(n) < 0.3
    clicks = pd.DataFrame({"user_id": uid[clicked], "ts": t0[clicked] + pd.Timedelta(seconds=2),
                           "request_id": rid[clicked]})
    activity = pd.DataFrame({"user_id": uid, "ts": t0 - pd.Timedelta(days=1)})
    return ExperimentEvents("ranker_v1", exposed, imps, clicks, activity, 0)


def test_srm_blocks_an_injected_split_at_200k(experiments):
    spec = experiments.experiments["ranker_v1"]
    r = ro.readout(synthetic_events(101_000, 99_000), spec)
    assert r["srm"]["blocked"] and r["srm_p"] < 0.001
    assert r["effect"] is None and r["comparisons"] == [] and r["decision"]["blocked"]
    assert "sample ratio mismatch" in r["decision"]["reason"]
    assert r["arms"]["control"]["users"] == 101_000  # the counts stay visible for the diagnosis
    k = int(np.random.default_rng(11).binomial(200_000, 0.5))  # a fair split of the same size
    fair = ro.readout(synthetic_events(k, 200_000 - k), spec, looks=2)
    assert not fair["srm"]["blocked"] and fair["effect"] is not None


def test_conflicting_and_late_users(tmp_path, assigner):
    build_lake(tmp_path / "lake", assigner, n_users=200)
    ev = load_events(tmp_path / "lake", "ranker_v1")
    uid = int(ev.exposed["user_id"].iloc[0])
    arm = ev.exposed["arm"].iloc[0]
    other = "treatment" if arm == "control" else "control"
    LakeWriter(tmp_path / "lake").write([Exposure(user_id=uid, experiment="ranker_v1", variant=other,
                                                  event_time=T0 + timedelta(hours=2))])
    ev2 = load_events(tmp_path / "lake", "ranker_v1")
    assert ev2.conflicting_users == 1 and uid not in set(ev2.exposed["user_id"])
    early = user_table(ev, until=pd.Timestamp(T0 + timedelta(minutes=10)))
    assert len(early) < len(user_table(ev))  # a look sees only the users exposed by then


def test_cli_writes_the_report_and_names_missing_data(tmp_path, assigner):
    build_lake(tmp_path / "lake", assigner, n_users=400)
    env = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"}
    ok = subprocess.run([sys.executable, "-m", "minirec.ab", "report", "ranker_v1", "--lake", str(tmp_path / "lake"),
                         "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"report.json", "report.md", "report.png"}
    empty = subprocess.run([sys.executable, "-m", "minirec.ab", "report", "list_length_v1", "--lake",
                            str(tmp_path / "lake")], capture_output=True, text=True, env=env, timeout=120)
    assert empty.returncode == 2 and "no exposures of experiment 'list_length_v1'" in empty.stderr
    unknown = subprocess.run([sys.executable, "-m", "minirec.ab", "report", "nope", "--lake", str(tmp_path / "lake")],
                             capture_output=True, text=True, env=env, timeout=120)
    assert unknown.returncode == 2 and "not in" in unknown.stderr


def test_no_exposures_is_a_readout_error(tmp_path):
    with pytest.raises(ReadoutError, match="make simulate"):
        load_events(tmp_path / "empty", "ranker_v1")
