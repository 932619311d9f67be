"""Which sessions the simulator plays, and when.

    lake interactions --temporal_split--> held-out (test) period --sessions()--> [Session, ...]
        --schedule: wall offset = (t - t0) / speedup--> started by the runner in event-time order

The held-out period is the test split of the training pipeline
(`minirec.train.split.temporal_split` with the pipeline's fractions), so the
simulated users are exactly the future the served model never saw.

A *session* is one burst of a user's held-out ratings: consecutive ratings
closer than `gap_s` (default 1 h; MovieLens users rate in bursts) belong to
one session, which starts at its first rating's time `t`. The session's
`next_items` are the items the user really rated from `t` to the end of the
held-out period ({item_id: rating}); the click model rewards those.

Bounds (all optional): `users` keeps the first N distinct users in
event-time order; `max_sessions` keeps the first N sessions; `duration_s`
keeps sessions whose wall offset is below it (the runner also stops at it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from minirec.train.split import temporal_split

VALID_FRAC = 0.1  # the training pipeline's defaults (minirec.pipeline.RunContext)
TEST_FRAC = 0.1
SESSION_GAP_S = 3600.0


class ReplayError(ValueError):
    """The held-out period cannot be replayed (no data, bad bounds); the message says what to do."""


@dataclass(frozen=True)
class Session:
    index: int  # position in the replay (0-based, event-time order); part of the RNG seed
    user_id: int
    t: pd.Timestamp  # event time of the session's first held-out rating (UTC)
    next_items: dict[int, float] = field(default_factory=dict)  # item_id -> held-out rating, from t on
    new_user: bool = False  # an id the model never saw (the new_users scenario)


def held_out(inter: pd.DataFrame, valid_frac: float = VALID_FRAC, test_frac: float = TEST_FRAC) -> pd.DataFrame:
    """The test period of the pipeline's temporal split (user_id, item_id, rating, event_timestamp)."""
    return temporal_split(inter, valid_frac, test_frac).test


def load_held_out(data_dir: Path, valid_frac: float = VALID_FRAC, test_frac: float = TEST_FRAC) -> pd.DataFrame:
    path = Path(data_dir) / "interactions.parquet"
    if not path.exists():
        raise ReplayError(f"{path} not found: run `make data` or pass --data-dir to a lake folder")
    inter = pd.read_parquet(path, columns=["user_id", "item_id", "rating", "event_timestamp"])
    return held_out(inter, valid_frac, test_frac)


def sessions(test: pd.DataFrame, *, gap_s: float = SESSION_GAP_S, users: int | None = None,
             max_sessions: int | None = None) -> list[Session]:
    """Cut the held-out log into sessions, in event-time order (ties by user id)."""
    if len(test) == 0:
        raise ReplayError("the held-out period is empty: nothing to replay")
    for name, v in (("users", users), ("max_sessions", max_sessions)):
        if v is not None and v < 1:
            raise ReplayError(f"--{name.replace('_', '-')} must be at least 1, got {v}")
    df = test.sort_values(["event_timestamp", "user_id", "item_id"], kind="stable").reset_index(drop=True)
    if users is not None:
        keep = pd.unique(df["user_id"])[:users]  # first N users to appear
        df = df[df["user_id"].isin(keep)]
    out: list[tuple[pd.Timestamp, int, dict[int, float]]] = []
    for uid, g in df.groupby("user_id", sort=False):
        ts = g["event_timestamp"]
        # a new session where the gap to the previous rating exceeds gap_s
        starts = ts.diff().dt.total_seconds().fillna(float("inf")).to_numpy() > gap_s
        items = g["item_id"].to_numpy()
        ratings = g["rating"].to_numpy()
        for i in starts.nonzero()[0]:
            future = {int(it): float(r) for it, r in zip(items[i:], ratings[i:], strict=True)}
            out.append((ts.iloc[i], int(uid), future))
    out.sort(key=lambda x: (x[0], x[1]))
    if max_sessions is not None:
        out = out[:max_sessions]
    return [Session(index=j, user_id=u, t=t, next_items=nx) for j, (t, u, nx) in enumerate(out)]


def offsets_s(plan: list[Session], speedup: float) -> list[float]:
    """Wall-clock start offset of each session in seconds: (t - t0) / speedup, t0 = first session."""
    if not speedup > 0:
        raise ReplayError(f"--speedup must be positive, got {speedup}")
    if not plan:
        return []
    t0 = min(s.t for s in plan)
    return [(s.t - t0).total_seconds() / speedup for s in plan]


def bound_duration(plan: list[Session], offsets: list[float],
                   duration_s: float | None) -> tuple[list[Session], list[float]]:
    """Keep the sessions that start within `duration_s` of wall time (all when None)."""
    if duration_s is None:
        return plan, offsets
    if duration_s <= 0:
        raise ReplayError(f"--duration-s must be positive, got {duration_s}")
    kept = [(s, o) for s, o in zip(plan, offsets, strict=True) if o <= duration_s]
    return [s for s, _ in kept], [o for _, o in kept]
