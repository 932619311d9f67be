"""Item trending counts in Redis: interactions per item over the last 1 h and 24 h of event time.

    <project>:rt:trend:wm    string      the watermark W: the newest event time applied (µs since 1970)
    <project>:rt:trend:ev    sorted set  "<item_id>:<event_id>" -> event time (µs), events with t > W - 24 h
    <project>:rt:trend:1h    sorted set  item_id -> interactions with t in (W - 1 h, W]    (items with 0 absent)
    <project>:rt:trend:24h   sorted set  item_id -> interactions with t in (W - 24 h, W]

Read them with ZSCORE (one item) or ZREVRANGE ... WITHSCORES (the top trending items), e.g.
`redis-cli ZREVRANGE minirec:rt:trend:1h 0 9 WITHSCORES`; `read_trending` below does it in Python.
Every Interaction counts (clicks and ratings), as in the user counts and the offline i_cnt_* features.

The windows slide with the watermark, the stream's event-time clock, not with the wall clock: an item
nobody interacted with for an hour drops out of the 1 h set once newer events (of any item) move W.
So the counts are a pure function of the set of distinct events seen: for W = the newest event
time, count each item's events in (W - window, W] (`recount`, the definition the tests compare with
after a replay). No Feast view holds item-level real-time features, so these keys are the interface.

One Lua script per micro-batch keeps it exact and idempotent (KEYS are the four keys above):
  1. W' = max(W, newest event of the batch);
  2. slide: events already counted with t in (W - 1 h, W' - 1 h] leave the 1 h count, those with
     t <= W' - 24 h leave the 24 h count and the event set (decrements per item);
  3. add: an event with t > W' - 24 h whose member is new (ZADD NX) increments its item's 24 h count,
     and the 1 h count when t > W' - 1 h; an older event is outside both windows and is skipped.
A replayed event is either still in the event set (NX: no-op) or was already outside the window
(skipped), so applying a batch twice changes nothing. Cost per batch: O(batch + events leaving the
windows); memory: one member per event of the last 24 h of event time (like the user state).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from minirec.events import Interaction
from services.stream.state import DAY_US, HOUR_US, time_us

WINDOWS = {"1h": HOUR_US, "24h": DAY_US}

# ARGV: h1_us, h24_us, then (member, time_us, item_id) triples. Returns {watermark (string), new events}.
TRENDING_LUA = """
local h1, h24 = tonumber(ARGV[1]), tonumber(ARGV[2])
local function fmt(x) return string.format('%.0f', x) end
local old = redis.call('GET', KEYS[1])
local wm = old and tonumber(old) or nil
for i = 3, #ARGV, 3 do
  local t = tonumber(ARGV[i + 1])
  if wm == nil or t > wm then wm = t end
end
if old then
  local prev = tonumber(old)
  if wm > prev then
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. fmt(prev - h1), fmt(wm - h1))) do
      redis.call('ZINCRBY', KEYS[3], -1, string.match(m, '^(%d+):'))
    end
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', fmt(wm - h24))) do
      redis.call('ZINCRBY', KEYS[4], -1, string.match(m, '^(%d+):'))
    end
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', fmt(wm - h24))
  end
end
redis.call('SET', KEYS[1], fmt(wm))
local new = 0
for i = 3, #ARGV, 3 do
  local t = tonumber(ARGV[i + 1])
  if t > wm - h24 and redis.call('ZADD', KEYS[2], 'NX', ARGV[i + 1], ARGV[i]) == 1 then
    new = new + 1
    redis.call('ZINCRBY', KEYS[4], 1, ARGV[i + 2])
    if t > wm - h1 then redis.call('ZINCRBY', KEYS[3], 1, ARGV[i + 2]) end
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', 0)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', 0)
return {fmt(wm), new}
"""


def trending_keys(project: str) -> list[str]:
    """[watermark, event set, 1 h counts, 24 h counts] (the script's KEYS order)."""
    return [f"{project}:rt:trend:{k}" for k in ("wm", "ev", "1h", "24h")]


def script_args(events: Iterable[Interaction]) -> list[Any]:
    args: list[Any] = [HOUR_US, DAY_US]
    for e in events:
        args += [f"{e.item_id}:{e.event_id}", time_us(e.event_time), e.item_id]
    return args


class TrendingState:
    """Applies interactions to the item trending counts: one script call per batch."""

    def __init__(self, client: Any, project: str):
        self.client = client  # redis.Redis
        self.keys = trending_keys(project)
        self._script = client.register_script(TRENDING_LUA)

    def apply(self, interactions: list[Interaction]) -> int:
        """Returns how many events were new to the windows. Raises on any Redis error (nothing half-done:
        a script runs atomically)."""
        if not interactions:
            return 0
        _, new = self._script(keys=self.keys, args=script_args(interactions))
        return int(new)


def read_trending(client: Any, project: str, top: int | None = None) -> dict[str, Any]:
    """{"watermark_us": W or None, "1h": {item: count}, "24h": {item: count}}, largest counts first."""
    wm_key, _, *count_keys = trending_keys(project)
    wm = client.get(wm_key)
    out: dict[str, Any] = {"watermark_us": int(wm) if wm is not None else None}
    for name, key in zip(WINDOWS, count_keys, strict=True):
        rows = client.zrevrange(key, 0, -1 if top is None else top - 1, withscores=True)
        out[name] = {int(item): int(score) for item, score in rows}
    return out


def recount(events: pd.DataFrame) -> dict[str, Any]:
    """The definition, computed from a log of events (item_id, event_id, event_timestamp), as read_trending
    returns it: distinct event ids, W = newest event time, each item's events in (W - window, W]."""
    ev = events.drop_duplicates("event_id")
    if len(ev) == 0:
        return {"watermark_us": None, **{name: {} for name in WINDOWS}}
    ts = pd.to_datetime(ev["event_timestamp"], utc=True)
    t = ((ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)).to_numpy(np.int64)  # µs since 1970
    wm = int(t.max())
    out: dict[str, Any] = {"watermark_us": wm}
    for name, width in WINDOWS.items():
        counts = ev.loc[t > wm - width, "item_id"].value_counts()
        out[name] = {int(i): int(c) for i, c in counts.items()}
    return out
