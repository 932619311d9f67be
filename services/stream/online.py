"""Online writes: per-user state (state.py), item trending counts (trending.py), ONE Feast push per batch.

    batch of Interactions --Lua per user, 1 pipeline--> state + seen-set (Redis)
                          --1 Lua call--> item trending counts, 1 h / 24 h (Redis keys, no Feast view)
                          --rows of touched users--> store.push("user_events_push", df)  (1 call)

Why Feast's push and not raw HSETs: the recommender reads the rows Feast
writes (services/recommender/features.py), and `push` is that encoding by
definition, so no second copy of Feast's key/field/proto layout is needed
here. Its cost is mostly per call (a few ms for one row), so one call per
batch of up to STREAM_BATCH_SIZE events amortises it; `loadtests/bench_stream.py`
measures the whole path.

The store is opened with `skip_dedup=True`: Feast's Redis writer otherwise
drops a row whose event_timestamp is not newer than the stored one, which would
lose a late event (its row keeps the same newest time but a higher count). The
state in Redis is the source of truth and every row is recomputed from it, so
overwriting is always right. Push is idempotent: the same state gives the same row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from minirec.events import Interaction
from services.stream.state import UserRow, UserState
from services.stream.trending import TrendingState

PUSH_SOURCE = "user_events_push"  # feature_repo/sources.py


def rows_frame(rows: list[UserRow]) -> pd.DataFrame:
    """The push frame: join key, every user_realtime feature and event_timestamp."""
    return pd.DataFrame({
        "user_id": pd.array([r.user_id for r in rows], dtype="int64"),
        "event_timestamp": pd.to_datetime([r.event_timestamp for r in rows], utc=True),
        "last_items": [r.last_items for r in rows],
        "u_cnt_1h": pd.array([r.u_cnt_1h for r in rows], dtype="int64"),
        "u_cnt_24h": pd.array([r.u_cnt_24h for r in rows], dtype="int64"),
    })


def open_push_store(repo: Path, project: str, redis_host: str, redis_port: int) -> Any:
    """A FeatureStore over the repo whose Redis writes skip Feast's timestamp check (see module doc)."""
    from minirec.features.store import open_store

    store = open_store(repo, project=project, redis_host=redis_host, redis_port=redis_port)
    store.config.online_store.skip_dedup = True
    return store


class OnlineWriter:
    def __init__(self, client: Any, store: Any, project: str):
        self.state = UserState(client, project)
        self.trending = TrendingState(client, project)
        self.store = store

    def write(self, interactions: list[Interaction]) -> list[UserRow]:
        """Apply the batch; returns the pushed rows (one per touched user). Raises on any Redis error."""
        rows = self.state.apply(interactions)
        self.trending.apply(interactions)  # idempotent like the user state, so a retry may repeat it
        if rows:
            self.store.push(PUSH_SOURCE, rows_frame(rows))
        return rows
