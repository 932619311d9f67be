"""The impression log's balance when nothing can be delivered: every logged event ends up counted."""

from __future__ import annotations

from minirec.infra.process import free_port
from services.recommender.impressions import ImpressionLog


def test_close_counts_what_could_not_be_delivered_and_refuses_later_events():
    dropped: dict[str, int] = {}
    depth: list[int] = []
    log = ImpressionLog(f"127.0.0.1:{free_port()}", "nowhere", buffer=30,  # nothing listens there
                        on_dropped=lambda r, n: dropped.__setitem__(r, dropped.get(r, 0) + n), on_depth=depth.append)
    accepted = [log.log(b"k", b"v") for _ in range(40)]
    assert accepted.count(True) == 30 and dropped == {"buffer_full": 10}  # the buffer holds 30
    balance = log.close(timeout_s=0.5)
    assert balance["logged"] == 40 and balance["sent"] == 0
    assert balance["dropped"] == 40 and balance["dropped_shutdown"] == 30 and balance["dropped_buffer_full"] == 10
    assert log.log(b"k", b"late") is False and log.dropped_by["shutdown"] == 31  # after close: counted, not queued
    assert dropped == {"buffer_full": 10, "shutdown": 31} and depth[-1] == 0
