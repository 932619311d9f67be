"""Event contracts: what travels on Kafka between the services.

    recommender --Impression--> impressions     (one per served list)
    simulator   --Interaction-> interactions    (click, rating)
    assignment  --Exposure----> exposures       (one per assignment served)
    stream      --DeadLetter--> deadletter      (what could not be processed)

Every event is JSON on the wire (UTF-8), keyed by `user_id` (decimal string),
so all of one user's events land on one partition in order. `event_id` is
unique per event and is the idempotency key: a consumer that sees the same
`event_id` twice applies it once. `event_time` is when the event happened (UTC,
ISO-8601 with offset); consumers window on it, never on arrival time.

Schema evolution rule (checked by tests/events/test_contracts.py):
  * a new version may only ADD fields, and each added field must be optional
    (have a default), so an old producer's event still validates;
  * consumers ignore fields they do not know (`extra="ignore"`), so a newer
    producer's event still validates against today's model;
  * a field is never removed, renamed or retyped; `schema_version` is bumped
    on every change and is informational (nothing branches on it).
A change that cannot follow the rule is a new event type on a new topic.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "DeadLetter", "Event", "EventError", "Exposure", "Impression", "Interaction",
    "MAX_ID", "Variant", "decode", "encode", "key_of", "new_event_id", "utcnow",
]

MAX_ID = 2**53  # ids travel as JSON numbers; Feast keys them as int64
Variant = Literal["control", "treatment"]
UserId = Annotated[int, Field(ge=1, le=MAX_ID)]
ItemId = Annotated[int, Field(ge=1, le=MAX_ID)]


def new_event_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Fields every event has. Unknown fields are ignored (forward compatible)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: int = 1
    event_id: str = Field(default_factory=new_event_id, min_length=1, max_length=64)
    event_time: datetime = Field(default_factory=utcnow, description="when it happened, UTC")
    user_id: UserId


class Impression(Event):
    """One list served by the recommender (`items[i]` was shown at position i, 0-based)."""

    kind: Literal["impression"] = "impression"
    request_id: str
    items: list[ItemId]
    scores: list[float]
    model_version: str
    variant: Variant = "control"
    fallback: str | None = None  # why the popularity list was served, None when the model answered


class Interaction(Event):
    """A user acting on an item: a click on a served list, or an explicit rating."""

    kind: Literal["interaction"] = "interaction"
    item_id: ItemId
    action: Literal["click", "rating"]
    rating: float | None = Field(None, ge=0.5, le=5.0)  # set when action == "rating"
    request_id: str | None = None  # the Impression's request_id when the item was shown in a list
    position: int | None = Field(None, ge=0)  # 0-based rank in that list
    variant: Variant | None = None  # the arm the list came from, when known


class Exposure(Event):
    """A user was assigned (and served) a variant of an experiment."""

    kind: Literal["exposure"] = "exposure"
    experiment: str = Field(..., min_length=1, max_length=128)
    variant: str = Field(..., min_length=1, max_length=64)


class DeadLetter(BaseModel):
    """A message that could not be processed, with why and the original bytes (base64)."""

    model_config = ConfigDict(extra="ignore", frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    schema_version: int = 1
    source_topic: str
    partition: int
    offset: int
    reason: str  # bad_json | schema | unknown_id | ...
    detail: str
    original: bytes  # base64 in JSON (ser_json_bytes), so any bytes survive the round trip
    dead_at: datetime = Field(default_factory=utcnow)


class EventError(ValueError):
    """A message that is not a valid event; `reason` is `bad_json` or `schema`."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def encode(event: BaseModel) -> bytes:
    """The wire form: compact JSON, UTF-8."""
    return event.model_dump_json().encode()


def key_of(event: Event) -> bytes:
    """The Kafka key: the user id as a decimal string (same partition per user)."""
    return str(event.user_id).encode()


E = TypeVar("E", bound=Event)


def decode(model: type[E], raw: bytes) -> E:
    """Parse one message into `model`; EventError names bad JSON vs a schema violation."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errs = exc.errors(include_url=False)
        if any(e["type"] in ("json_invalid", "json_type") for e in errs):
            raise EventError("bad_json", errs[0]["msg"]) from None
        detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in errs[:5])
        raise EventError("schema", detail) from None
