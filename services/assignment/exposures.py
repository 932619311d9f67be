"""Exposure events as bytes on the request path: the shared contract, written without a model per event.

    decide() --exposure_bytes(...)--> EventLog.log(key, value) --sender thread--> Kafka `exposures`

`minirec.events.Exposure` is the contract; building and dumping one pydantic model per
assignment cost ~50 µs here, as much as the rest of the decision, so the JSON is formatted
from a template instead. The template is the model's own field order and names, experiment and
variant names are config-validated (`[a-z][a-z0-9_]*`, nothing to escape), and
tests/assignment/test_exposure_bytes.py checks that `decode(Exposure, bytes)` gives back every
field for many values. Event ids: a random 64-bit prefix per process and a counter (unique,
and cheaper than a uuid4 per event).
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

TEMPLATE = ('{{"schema_version":1,"event_id":"{id}","event_time":"{t}","user_id":{u},"kind":"exposure",'
            '"experiment":"{e}","variant":"{v}"}}')


class ExposureEncoder:
    def __init__(self):
        self.prefix, self._seq = uuid.uuid4().hex[:16], itertools.count()

    def next_id(self) -> str:
        return f"{self.prefix}{next(self._seq):016x}"

    def encode(self, user_id: int, experiment: str, variant: str, event_time: datetime) -> tuple[bytes, bytes]:
        """(Kafka key, value): key = the user id as decimal (minirec.events.key_of), value = Exposure JSON."""
        t = event_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        key = str(user_id)
        return key.encode(), TEMPLATE.format(id=self.next_id(), t=t, u=key, e=experiment, v=variant).encode()
