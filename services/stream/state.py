"""Per-user real-time state in Redis, updated idempotently by one Lua script per user.

    <project>:rt:ev:<uid>     sorted set  event_id -> event time (µs since epoch), last 24 h of event time
    <project>:rt:items:<uid>  sorted set  item_id  -> latest event time of that item (µs), top KEEP_ITEMS
    <project>:seen:<uid>      set         item ids (minirec.features.seen, read by the recommender)

Every operation in the script is idempotent: ZADD NX on the event id, ZADD GT on
the item's latest time, SADD on the seen-set, and trims relative to the newest
event time. So applying a batch twice (a replay after a crash, a retry after
Redis came back) leaves the same state, and the feature row is recomputed from
the state, never incremented: the event id set IS the applied-events record.

The row follows minirec.features.tables.build_user_realtime exactly, so the
online row equals the offline table's latest row for the user:
  * t = the newest event time of the user (event time, not arrival time);
  * u_cnt_1h / u_cnt_24h = events with time in (t - window, t];
  * last_items = distinct items by their latest time, newest first, ties by
    the larger item id first (offline inserts same-time items in id order).
Both clicks and ratings count (any Interaction).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from minirec.events import Interaction
from minirec.features.seen import seen_key
from minirec.features.tables import LAST_N

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
KEEP_ITEMS = 2 * LAST_N  # margin over LAST_N so ties at the cut are resolved in Python, not by Redis order

# KEYS: ev, items, seen. ARGV: h1_us, h24_us, keep, then (event_id, time_us, item_id) triples.
# Returns {new events, newest time (string, µs), count 1 h, count 24 h, {item, score, ...}}.
# Scores are doubles: µs since 1970 (~1.8e15) is exact below 2^53.
APPLY_LUA = """
local h1, h24, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local new = 0
for i = 4, #ARGV, 3 do
  new = new + redis.call('ZADD', KEYS[1], 'NX', ARGV[i + 1], ARGV[i])
  redis.call('ZADD', KEYS[2], 'GT', ARGV[i + 1], ARGV[i + 2])
  redis.call('SADD', KEYS[3], ARGV[i + 2])
end
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local tmax = tonumber(top[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', tmax - h24))
local c1h = redis.call('ZCOUNT', KEYS[1], string.format('(%.0f', tmax - h1), '+inf')
local c24h = redis.call('ZCARD', KEYS[1])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(keep + 1))
local items = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
return {new, string.format('%.0f', tmax), c1h, c24h, items}
"""


def time_us(t: datetime) -> int:
    """An aware datetime -> integer µs since 1970-01-01 UTC (exact)."""
    return (t - EPOCH) // timedelta(microseconds=1)


def state_keys(project: str, user_id: int) -> list[str]:
    return [f"{project}:rt:ev:{user_id}", f"{project}:rt:items:{user_id}", seen_key(project, user_id)]


@dataclass(frozen=True)
class UserRow:
    """One user_realtime row (the Feast push columns) plus how many events were new."""

    user_id: int
    event_timestamp: datetime
    last_items: list[int]
    u_cnt_1h: int
    u_cnt_24h: int
    new_events: int


def script_args(events: Iterable[Interaction]) -> list[Any]:
    args: list[Any] = [HOUR_US, DAY_US, KEEP_ITEMS]
    for e in events:
        args += [e.event_id, time_us(e.event_time), e.item_id]
    return args


def parse_reply(user_id: int, reply: list[Any]) -> UserRow:
    """The script's reply -> the feature row (last_items ordered as build_user_realtime orders it)."""
    new, tmax, c1h, c24h, flat = reply
    pairs = [(float(flat[i + 1]), int(flat[i])) for i in range(0, len(flat), 2)]  # (time µs, item)
    pairs.sort(reverse=True)  # newest first; same time: larger item id first
    t = int(tmax)
    return UserRow(user_id=user_id, event_timestamp=EPOCH + timedelta(microseconds=t),
                   last_items=[item for _, item in pairs[:LAST_N]], u_cnt_1h=int(c1h), u_cnt_24h=int(c24h),
                   new_events=int(new))


class UserState:
    """Applies interactions to the per-user state: one pipeline (one round trip) per batch."""

    def __init__(self, client: Any, project: str):
        self.client = client  # redis.Redis
        self.project = project
        self._script = client.register_script(APPLY_LUA)

    def apply(self, interactions: Iterable[Interaction]) -> list[UserRow]:
        by_user: dict[int, list[Interaction]] = {}
        for e in interactions:
            by_user.setdefault(e.user_id, []).append(e)
        if not by_user:
            return []
        users = list(by_user)
        with self.client.pipeline(transaction=False) as pipe:
            for u in users:
                self._script(keys=state_keys(self.project, u), args=script_args(by_user[u]), client=pipe)
            replies = pipe.execute()
        return [parse_reply(u, r) for u, r in zip(users, replies, strict=True)]
