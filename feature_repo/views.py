"""Feature views: named, typed groups of features over one source.

`ttl=timedelta(0)` means a value never expires: the latest row at or before
the lookup time is used, however old (daily snapshots exist for every day, so
the aggregate views are at most one day stale).
"""

from datetime import timedelta

from entities import item, user
from feast import FeatureView, Field
from feast.types import Array, Float32, Int64, String
from sources import (
    item_attributes_source,
    item_popularity_source,
    user_aggregates_source,
    user_events_push,
    user_profile_source,
)

NEVER = timedelta(0)

# Who the user is: demographic profile from signup.
user_profile = FeatureView(
    name="user_profile",
    entities=[user],
    ttl=NEVER,
    schema=[
        Field(name="age_bucket", dtype=Int64),  # 0:<18 1:18-24 2:25-34 3:35-44 4:45-49 5:50-55 6:56+
        Field(name="gender", dtype=String),  # "M" / "F"
        Field(name="occupation", dtype=String),
    ],
    source=user_profile_source,
    online=True,
)

# What the user did recently: trailing-window activity and taste, daily batch.
user_aggregates = FeatureView(
    name="user_aggregates",
    entities=[user],
    ttl=NEVER,
    schema=[
        Field(name="u_cnt_7d", dtype=Int64),  # ratings in the last 7 days
        Field(name="u_cnt_30d", dtype=Int64),
        Field(name="u_cnt_all", dtype=Int64),  # ratings since the log began
        Field(name="u_mean_rating_30d", dtype=Float32),  # 0 when no rating in 30 days
        Field(name="u_genre_share_90d", dtype=Array(Float32)),  # (19,) share of genre tags, last 90 days
    ],
    source=user_aggregates_source,
    online=True,
)

# What the user is doing right now: pushed by the stream processor per event.
user_realtime = FeatureView(
    name="user_realtime",
    entities=[user],
    ttl=NEVER,
    schema=[
        Field(name="last_items", dtype=Array(Int64)),  # up to 20 item ids, most recent first
        Field(name="u_cnt_1h", dtype=Int64),  # ratings in the hour up to the last event
        Field(name="u_cnt_24h", dtype=Int64),
    ],
    source=user_events_push,
    online=True,
)

# What the film is: genres and release year.
item_attributes = FeatureView(
    name="item_attributes",
    entities=[item],
    ttl=NEVER,
    schema=[
        Field(name="genres", dtype=Array(String)),
        Field(name="year", dtype=Int64),  # release year, 0 when unknown
    ],
    source=item_attributes_source,
    online=True,
)

# How much the film is watched lately: trailing counts and a decayed score, daily batch.
item_popularity = FeatureView(
    name="item_popularity",
    entities=[item],
    ttl=NEVER,
    schema=[
        Field(name="i_cnt_7d", dtype=Int64),
        Field(name="i_cnt_30d", dtype=Int64),
        Field(name="i_cnt_all", dtype=Int64),
        Field(name="i_pop_decayed", dtype=Float32),  # sum of exp(-age/7 d) over past ratings
    ],
    source=item_popularity_source,
    online=True,
)
