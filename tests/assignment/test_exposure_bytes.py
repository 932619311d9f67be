"""The service's templated Exposure JSON is the shared contract: the model decodes every field back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from minirec.events import Exposure, decode, encode, key_of
from services.assignment.exposures import ExposureEncoder


@pytest.mark.parametrize("t", [datetime(2026, 12, 2, 15, 0, 0, tzinfo=UTC),
                               datetime(2026, 12, 2, 15, 0, 0, 123456, tzinfo=UTC),
                               datetime(2026, 12, 2, 17, 0, 0, 7, tzinfo=timezone(timedelta(hours=2)))])
@pytest.mark.parametrize("user_id,experiment,variant", [(1, "ranker_v1", "control"),
                                                        (2**53, "cold_start_v1", "treatment"),
                                                        (196, "x", "arm_3")])
def test_templated_bytes_decode_to_the_same_event(t, user_id, experiment, variant):
    enc = ExposureEncoder()
    key, value = enc.encode(user_id, experiment, variant, t)
    ev = decode(Exposure, value)
    assert (ev.user_id, ev.experiment, ev.variant, ev.kind, ev.schema_version) == (user_id, experiment, variant,
                                                                                   "exposure", 1)
    assert ev.event_time == t and ev.event_time.utcoffset() == timedelta(0)
    assert key == key_of(ev)
    model = Exposure(user_id=user_id, experiment=experiment, variant=variant, event_time=t, event_id=ev.event_id)
    assert decode(Exposure, encode(model)) == ev  # the same event the model would have written


def test_event_ids_are_unique_within_and_across_encoders():
    a, b = ExposureEncoder(), ExposureEncoder()
    ids = {a.next_id() for _ in range(10_000)} | {b.next_id() for _ in range(10_000)}
    assert len(ids) == 20_000 and all(len(i) == 32 for i in ids)
