"""Entities: the join keys every feature hangs off."""

from feast import Entity, ValueType

# A person who rates films; MovieLens `user_id` (int).
user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64,
              description="A MovieLens user")

# A film in the catalogue; MovieLens `item_id` (int).
item = Entity(name="item", join_keys=["item_id"], value_type=ValueType.INT64,
              description="A MovieLens film")
