"""Sources: where feature rows come from.

Batch sources are parquet tables under `data/` (relative to this repo),
derived from the event lake by `minirec.features.tables`. Every row carries
`event_timestamp`, the moment the value became known: point-in-time joins
use it so that no row newer than a label's timestamp reaches that label.
"""

from feast import FileSource, PushSource

# Static user attributes; timestamped at the catalogue epoch (known up front).
user_profile_source = FileSource(name="user_profile_source", path="data/user_profile.parquet",
                                 timestamp_field="event_timestamp")

# Daily snapshots (00:00 UTC) of trailing-window user aggregates over events strictly before.
user_aggregates_source = FileSource(name="user_aggregates_source", path="data/user_aggregates.parquet",
                                    timestamp_field="event_timestamp")

# One row per (user, event second): the user's state right after those events.
user_realtime_batch_source = FileSource(name="user_realtime_batch_source",
                                        path="data/user_realtime.parquet",
                                        timestamp_field="event_timestamp")

# Push endpoint the stream processor feeds with the same columns in real time;
# its batch_source is the offline history used for training and backfills.
user_events_push = PushSource(name="user_events_push", batch_source=user_realtime_batch_source)

# Static film attributes; timestamped at the catalogue epoch.
item_attributes_source = FileSource(name="item_attributes_source", path="data/item_attributes.parquet",
                                    timestamp_field="event_timestamp")

# Daily snapshots (00:00 UTC) of film popularity over trailing windows.
item_popularity_source = FileSource(name="item_popularity_source", path="data/item_popularity.parquet",
                                    timestamp_field="event_timestamp")
