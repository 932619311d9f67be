"""`simulate(...)`: the whole run as one plain function (the CLI and the tests call it).

    lake --replay.sessions--> plan --scenario.plan--> offsets --Runner.run--> Summary
"""

from __future__ import annotations

from pathlib import Path

from services.simulator import replay, scenarios
from services.simulator.clicks import ClickModel
from services.simulator.client import Assigner, Recommender
from services.simulator.producer import DrySink, KafkaSink
from services.simulator.runner import RunConfig, Runner, Summary


class SimulateError(ValueError):
    """Bad arguments or data; the message says what to change."""


def build_plan(data_dir: Path, *, users: int | None = None, max_sessions: int | None = None,
               session_gap_s: float = replay.SESSION_GAP_S, scenario: str = "none", seed: int = 0):
    """(scenario object, sessions, wall offsets before the speed-up) for a lake folder."""
    try:
        test = replay.load_held_out(data_dir)
        plan = replay.sessions(test, gap_s=session_gap_s, users=users, max_sessions=max_sessions)
        scen = scenarios.make(scenario, scenarios.Catalogue.load(data_dir), seed)
    except (ValueError, FileNotFoundError) as exc:  # ReplayError, SplitError, unknown genre/scenario
        raise SimulateError(str(exc)) from exc
    return scen, scen.plan(plan)


def simulate(*, data_dir: Path, recommender_url: str, kafka_bootstrap: str, topic: str, users: int | None = None,
             max_sessions: int | None = None, duration_s: float | None = None, speedup: float = 3600.0,
             session_gap_s: float = replay.SESSION_GAP_S, k: int = 10, seed: int = 0, scenario: str = "none",
             noise: float = 0.02, max_attract: float = 0.9, ratings: bool = False, exclude_seen: bool = True,
             dry_run: bool = False, concurrency: int = 8, timeout_s: float = 5.0, progress: bool = True,
             sink=None, assignment_url: str | None = None, experiment: str | None = None) -> Summary:
    """Replay the held-out period against `recommender_url`; events to `topic` (or `sink`, or nowhere).

    With `assignment_url` and `experiment`, each session first asks the assignment service for the
    user's arm and requests that variant, so clicks carry the arm."""
    if not 1 <= k <= 100:
        raise SimulateError(f"--k must be in 1..100 (the recommender's limit), got {k}")
    if concurrency < 1:
        raise SimulateError(f"--concurrency must be at least 1, got {concurrency}")
    try:
        model = ClickModel(max_attract=max_attract, noise=noise)
    except ValueError as exc:
        raise SimulateError(str(exc)) from exc
    scen, plan = build_plan(data_dir, users=users, max_sessions=max_sessions, session_gap_s=session_gap_s,
                            scenario=scenario, seed=seed)
    try:
        offsets = replay.offsets_s(plan, speedup)
        plan, offsets = replay.bound_duration(plan, offsets, duration_s)
    except replay.ReplayError as exc:
        raise SimulateError(str(exc)) from exc
    if sink is None:
        sink = DrySink() if dry_run else KafkaSink(kafka_bootstrap, topic)
    rec = Recommender(recommender_url, timeout_s=timeout_s)
    runner = Runner(rec, sink, model, scen, RunConfig(k=k, seed=seed, exclude_seen=exclude_seen, ratings=ratings,
                                                      concurrency=concurrency, duration_s=duration_s),
                    Assigner(assignment_url, experiment))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(plan), unit="session", desc=f"simulate[{scen.name}]", dynamic_ncols=True)
    try:
        return runner.run(plan, offsets, on_done=bar.update if bar else None)
    finally:
        rec.close()
        if bar:
            bar.close()
