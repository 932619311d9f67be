"""Liveness of the consumer's group membership: restart a consumer stuck outside a stable group.

    after every poll:  coordinator stable (joined, heartbeating)  -> reset the clock
                       not stable for more than `limit_s`         -> stuck: the processor closes the
                                                                     consumer and builds a new one

Why: in one CI run out of five, kafka-python 3.0.12's consumer joined its group, took an empty first
assignment (the topics' metadata had not arrived), and the rebalance that followed never finished:
no error, no records, no commits for 300 s, while the process looked healthy. A normal rebalance here
takes well under 10 s, so a membership that has not been stable for `limit_s` (default 120 s,
STREAM_GROUP_STUCK_S) is treated as wedged. A new consumer rejoins from scratch and resumes from the
committed offsets; nothing is lost (uncommitted work is replayed and every write is idempotent).

The cost of a false alarm is one extra rebalance (counted in stream_consumer_restarts_total). One can
happen when another member of the group stops polling for longer than `limit_s` (e.g. it is retrying a
batch through a Redis outage): the group waits for it, and this member restarts once per `limit_s`.

The state is read from kafka-python's coordinator (`consumer._coordinator.stable()`, not public API);
a client without it is never reported stuck.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class GroupWatchdog:
    def __init__(self, limit_s: float, clock: Callable[[], float] = time.monotonic):
        self.limit_s, self.clock = limit_s, clock
        self.stable_at = clock()  # last time the membership was seen stable (or the watch began)

    def reset(self) -> None:
        """Start the clock again (a new consumer gets the full `limit_s` to join)."""
        self.stable_at = self.clock()

    def stuck(self, consumer: Any) -> bool:
        """True when `consumer` has not been in a stable group for more than limit_s."""
        stable = getattr(getattr(consumer, "_coordinator", None), "stable", None)
        now = self.clock()
        if stable is None or stable():
            self.stable_at = now
            return False
        return now - self.stable_at > self.limit_s
