"""Event contracts (minirec/events.py): wire round trip, schema evolution both ways, clear errors.

The evolution rule says a new version only adds optional fields. "Next" models
below are what that rule allows: a subclass with one optional field and
schema_version 2. Today's consumer must read the next producer's bytes (the new
field is ignored), and the next consumer must read today's bytes (the new field
takes its default).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from minirec.events import (
    DeadLetter,
    EventError,
    Exposure,
    Impression,
    Interaction,
    decode,
    encode,
    key_of,
)

T0 = datetime(2026, 12, 2, 10, 0, 0, 123456, tzinfo=UTC)

SAMPLES = {
    Impression: Impression(user_id=7, event_time=T0, request_id="r-1", items=[3, 1, 2],
                           scores=[0.9, 0.5, 0.25], model_version="two_tower:v1", fallback=None),
    Interaction: Interaction(user_id=7, event_time=T0, item_id=3, action="click", request_id="r-1",
                             position=0, variant="treatment"),
    Exposure: Exposure(user_id=7, event_time=T0, experiment="ranker-2026-12", variant="treatment"),
}


class InteractionV2(Interaction):
    schema_version: int = 2
    dwell_ms: int | None = None  # the kind of field the rule allows: new and optional


class ImpressionV2(Impression):
    schema_version: int = 2
    surface: str = "home"


class ExposureV2(Exposure):
    schema_version: int = 2
    bucket: int | None = None


NEXT = {Impression: ImpressionV2, Interaction: InteractionV2, Exposure: ExposureV2}
NEW_FIELD = {Impression: ("surface", "carousel"), Interaction: ("dwell_ms", 1234), Exposure: ("bucket", 42)}


@pytest.mark.parametrize("model", list(SAMPLES), ids=lambda m: m.__name__)
def test_round_trip(model):
    event = SAMPLES[model]
    raw = encode(event)
    back = decode(model, raw)
    assert back == event
    assert back.event_time == T0 and back.event_time.tzinfo is not None
    assert json.loads(raw)["kind"] == model.model_fields["kind"].default
    assert key_of(event) == b"7"


@pytest.mark.parametrize("model", list(SAMPLES), ids=lambda m: m.__name__)
def test_next_version_is_read_by_todays_consumer(model):
    name, value = NEW_FIELD[model]
    newer = NEXT[model](**SAMPLES[model].model_dump(exclude={"schema_version"}), **{name: value})
    raw = encode(newer)
    assert json.loads(raw)[name] == value and json.loads(raw)["schema_version"] == 2
    today = decode(model, raw)
    assert type(today) is model
    assert not hasattr(today, name)  # ignored, not an error
    assert today.event_id == newer.event_id and today.user_id == newer.user_id
    assert today.schema_version == 2  # informational: passed through, nothing branches on it


@pytest.mark.parametrize("model", list(SAMPLES), ids=lambda m: m.__name__)
def test_todays_event_is_read_by_next_consumer(model):
    name, _ = NEW_FIELD[model]
    raw = encode(SAMPLES[model])
    nxt = decode(NEXT[model], raw)
    assert getattr(nxt, name) == NEXT[model].model_fields[name].default
    assert nxt.schema_version == 1
    assert nxt.model_dump(exclude={name}) == SAMPLES[model].model_dump()


def test_event_ids_are_unique_and_default_time_is_utc():
    a, b = (Interaction(user_id=1, item_id=2, action="click") for _ in range(2))
    assert a.event_id != b.event_id
    assert a.event_time.utcoffset() == timedelta(0)


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe\x00", b'{"user_id": 1,'],
                         ids=["garbage", "empty", "not-utf8", "truncated"])
def test_bad_json_is_named(raw):
    with pytest.raises(EventError) as err:
        decode(Interaction, raw)
    assert err.value.reason == "bad_json"


@pytest.mark.parametrize("payload,field", [
    ({"item_id": 3, "action": "click"}, "user_id"),  # missing
    ({"user_id": 0, "item_id": 3, "action": "click"}, "user_id"),  # out of range
    ({"user_id": 1, "item_id": "three", "action": "click"}, "item_id"),  # wrong type
    ({"user_id": 1, "item_id": 3, "action": "purchase"}, "action"),  # not in the enum
    ({"user_id": 1, "item_id": 3, "action": "rating", "rating": 9.0}, "rating"),
    ({"user_id": 1, "item_id": 3, "action": "click", "event_time": "yesterday"}, "event_time"),
], ids=["missing", "range", "type", "enum", "rating", "time"])
def test_schema_violation_is_named(payload, field):
    with pytest.raises(EventError) as err:
        decode(Interaction, json.dumps(payload).encode())
    assert err.value.reason == "schema"
    assert field in err.value.detail


def test_json_that_is_not_an_object_is_a_schema_violation_or_bad_json():
    # a valid JSON array is not an event: it must raise EventError, never pass or crash
    with pytest.raises(EventError) as err:
        decode(Interaction, b"[1, 2, 3]")
    assert err.value.reason in {"schema", "bad_json"}


def test_dead_letter_keeps_any_bytes():
    original = b"\xff\x00{not json"
    dl = DeadLetter(source_topic="interactions", partition=2, offset=17, reason="bad_json",
                    detail="x", original=original)
    raw = encode(dl)
    assert base64.urlsafe_b64decode(json.loads(raw)["original"]) == original  # pydantic writes url-safe base64
    assert DeadLetter.model_validate_json(raw).original == original
