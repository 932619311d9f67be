"""The processor's commit during a group rebalance: refused, so the batch is dropped and the loop
returns to poll() (where kafka-python completes the rebalance), instead of retrying the commit forever."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from kafka.errors import CommitFailedError, KafkaTimeoutError, RebalanceInProgressError

from services.stream.consumer import Processor


class _Refusing:
    def __init__(self, exc: Exception):
        self.exc, self.calls = exc, []

    def commit(self, offsets):
        self.calls.append(offsets)
        raise self.exc


@pytest.mark.parametrize("exc", [RebalanceInProgressError("rebalancing"), CommitFailedError("kicked out")])
def test_a_commit_refused_by_a_rebalance_drops_the_batch(exc):
    consumer = _Refusing(exc)
    batch = SimpleNamespace(offsets={("interactions", 0): 42})
    assert Processor._commit(SimpleNamespace(consumer=consumer), batch) is False
    (offsets,) = consumer.calls
    assert [(tp.topic, tp.partition, om.offset) for tp, om in offsets.items()] == [("interactions", 0, 42)]


def test_other_commit_errors_propagate_to_the_retry_loop():
    with pytest.raises(KafkaTimeoutError):
        Processor._commit(SimpleNamespace(consumer=_Refusing(KafkaTimeoutError("slow"))),
                          SimpleNamespace(offsets={("interactions", 0): 1}))
