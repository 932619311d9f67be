"""User features of the served users, read from the Feast online store (Redis).

The recommender reads the same rows (feature service two_tower_v1) when it
serves; the impression event does not carry them, so the job reads them back
per window for the window's users (one batched online read, ~63 µs per extra
entity on this machine's Feast). They are the values at job time, at most
DRIFT_WINDOW_S + DRIFT_LATENESS_S + one loop interval after serving; the
real-time features may have moved by a few events since. A user the store does
not know comes back with None values (a new user), which the frames turn into
"unknown" categories and zero counts.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SERVICE = "two_tower_v1"


class OnlineFeatures:
    def __init__(self, repo: Path, project: str | None = None, redis_host: str | None = None,
                 redis_port: int | None = None):
        self.repo, self.project, self.redis_host, self.redis_port = Path(repo), project, redis_host, redis_port
        self._store = None

    def __call__(self, user_ids: list[int]) -> pd.DataFrame:
        from minirec.features.store import online_features, open_store

        if self._store is None:
            self._store = open_store(self.repo, project=self.project, redis_host=self.redis_host,
                                     redis_port=self.redis_port)
        uniq = list(dict.fromkeys(int(u) for u in user_ids))
        try:
            rows = online_features(self._store, SERVICE, "user_id", uniq)
        except Exception as exc:  # redis-py raises its own ConnectionError; the job retries the window
            raise ConnectionError(f"online store unreadable ({type(exc).__name__}: {exc}); "
                                  "is Redis up (`make up`)?") from exc
        by_user = rows.set_index("user_id")
        return by_user.reindex(user_ids).reset_index()
