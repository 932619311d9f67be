"""Feature services: the versioned contracts the model reads.

Training (point-in-time join) and serving (online read) ask for the same
service, so a feature the model was trained on cannot silently differ from
the one it is served. Bump the version when the feature list changes.
"""

from feast import FeatureService
from views import item_attributes, item_popularity, user_aggregates, user_profile, user_realtime

# User-tower inputs, read per request by the recommender and per label in training.
two_tower_v1 = FeatureService(
    name="two_tower_v1",
    features=[user_profile, user_aggregates, user_realtime],
    description="user-side inputs of the two-tower model (v1)",
)

# Item-tower inputs and the popularity score term, read when the item index is built.
two_tower_items_v1 = FeatureService(
    name="two_tower_items_v1",
    features=[item_attributes, item_popularity],
    description="item-side inputs of the two-tower model (v1)",
)
