"""The user's seen-set in Redis: every item the user has rated or clicked.

    key   = "<project>:seen:<user_id>"     (a Redis set of item ids, decimal strings)

Written by the training pipeline's backfill (from the lake) and by the stream
processor (per interaction); read by the recommender to drop items the user
already knows. One definition here, because those are three services.
"""

from __future__ import annotations

from typing import Any


def seen_key(project: str, user_id: int) -> str:
    """Redis set of every item the user rated (written by `backfill_seen` and the stream processor)."""
    return f"{project}:seen:{user_id}"


def backfill_seen(client: Any, project: str, interactions: Any, batch: int = 500) -> int:
    """Add every user's rated items to their seen-set (`interactions`: user_id, item_id frame).

    SADD only, never DELETE: items the stream processor added since the lake
    snapshot stay in the set. Returns the number of users written.
    """
    n = 0
    groups = interactions.groupby("user_id")["item_id"]
    with client.pipeline(transaction=False) as pipe:
        for j, (u, items) in enumerate(groups):
            pipe.sadd(seen_key(project, int(u)), *[int(i) for i in items.unique()])
            n += 1
            if (j + 1) % batch == 0:
                pipe.execute()
        pipe.execute()
    return n
