"""Which sessions are replayed and when (pure functions, plus the runner's dispatcher)."""

from __future__ import annotations

import pandas as pd
import pytest

from minirec.train.split import temporal_split
from services.simulator import replay
from services.simulator.clicks import ClickModel
from services.simulator.client import Recommender
from services.simulator.producer import DrySink
from services.simulator.runner import RunConfig, Runner
from services.simulator.scenarios import Scenario

T0 = pd.Timestamp("2024-03-01", tz="UTC")


def log(rows):
    """rows: (user, item, rating, seconds after T0)."""
    return pd.DataFrame({"user_id": [r[0] for r in rows], "item_id": [r[1] for r in rows],
                         "rating": [float(r[2]) for r in rows],
                         "event_timestamp": [T0 + pd.Timedelta(seconds=r[3]) for r in rows]})


def test_sessions_cut_by_gap_in_event_time_order_with_the_future_as_next_items():
    test = log([(1, 10, 5, 0), (1, 11, 4, 100), (2, 20, 3, 50), (1, 12, 2, 5000), (2, 21, 1, 9000)])
    plan = replay.sessions(test, gap_s=3600)
    assert [(s.index, s.user_id, (s.t - T0).total_seconds()) for s in plan] == [
        (0, 1, 0), (1, 2, 50), (2, 1, 5000), (3, 2, 9000)]
    assert plan[0].next_items == {10: 5.0, 11: 4.0, 12: 2.0}  # this session and the user's later ratings
    assert plan[2].next_items == {12: 2.0}
    assert plan[1].next_items == {20: 3.0, 21: 1.0}
    assert len(replay.sessions(test, gap_s=10)) == 5  # every rating its own session


def test_bounds_users_and_max_sessions():
    test = log([(u, 100 + u, 4, 10 * u + 10_000 * j) for u in range(1, 6) for j in range(3)])
    assert {s.user_id for s in replay.sessions(test, users=2)} == {1, 2}  # the first two to appear
    assert [s.index for s in replay.sessions(test, max_sessions=4)] == [0, 1, 2, 3]
    with pytest.raises(replay.ReplayError, match="--users"):
        replay.sessions(test, users=0)
    with pytest.raises(replay.ReplayError, match="empty"):
        replay.sessions(test.iloc[:0])


def test_offsets_scale_held_out_time_by_the_speedup_and_duration_bounds_them():
    test = log([(1, 1, 4, 0), (2, 2, 4, 3600), (3, 3, 4, 7200), (4, 4, 4, 36_000)])
    plan = replay.sessions(test)
    assert replay.offsets_s(plan, speedup=3600) == [0.0, 1.0, 2.0, 10.0]
    assert replay.offsets_s(plan, speedup=1) == [0.0, 3600.0, 7200.0, 36_000.0]
    kept, offs = replay.bound_duration(plan, replay.offsets_s(plan, 3600), duration_s=2.0)
    assert [s.user_id for s in kept] == [1, 2, 3] and offs == [0.0, 1.0, 2.0]
    with pytest.raises(replay.ReplayError, match="speedup"):
        replay.offsets_s(plan, 0)


def test_held_out_is_the_pipelines_test_period(tmp_path):
    from minirec.data.synthetic import SyntheticConfig, generate

    generate(SyntheticConfig(n_users=120, n_items=60, mean_interactions=10, days=30, seed=3), tmp_path)
    inter = pd.read_parquet(tmp_path / "interactions.parquet")
    split = temporal_split(inter, 0.1, 0.1)
    test = replay.load_held_out(tmp_path)
    assert len(test) == len(split.test) and test["event_timestamp"].min() >= split.cut_test
    plan = replay.sessions(test)
    assert sum(len(s.next_items) for s in plan) >= len(test)  # every held-out rating is someone's next item
    with pytest.raises(replay.ReplayError, match="make data"):
        replay.load_held_out(tmp_path / "missing")


def test_runner_keeps_the_schedule_and_counts_an_unreachable_recommender():
    # offsets 0, 0.25, 0.5 s: the run cannot end before the last session's start
    test = log([(1, 1, 4, 0), (2, 2, 4, 900), (3, 3, 4, 1800)])
    plan = replay.sessions(test)
    offsets = replay.offsets_s(plan, speedup=3600)
    rec = Recommender("http://127.0.0.1:9", timeout_s=1)  # port 9 (discard): nothing listens
    done = []
    runner = Runner(rec, DrySink(), ClickModel(), Scenario(), RunConfig(concurrency=2))
    m = runner.run(plan, offsets, on_done=lambda: done.append(1))
    rec.close()
    assert m.wall_s >= offsets[-1]
    assert m.sessions == 3 and len(done) == 3 and m.requests == 0
    assert m.errors == {"unreachable": 3} and "make serve" in m.error_hints["unreachable"]
