"""Consumer-group failover: two `python -m services.stream` processes in one group on 3 partitions,
kill -9 one mid-stream; the group rebalances, the survivor takes its partitions over, and every event
lands in the lake exactly once with online counts equal to a recount from the lake."""

from __future__ import annotations

import pytest

from loadtests.scale_stream import group_members as group_assignment
from minirec.events import encode, key_of
from tests.stream.conftest import (
    Subprocess,
    assert_online_matches_lake,
    committed_offsets,
    end_offsets,
    read_lake,
    stream_config,
    wait_for,
)
from tests.stream.test_crash import make_events

N_EVENTS = 30_000


def owned_by(proc: Subprocess, topic: str) -> set[int]:
    """Partitions of `topic` a processor reports a lag gauge for. Gauges outlive a revocation, so this is
    its assignment only for a process that has held one assignment: the member started second."""
    import httpx

    try:
        text = httpx.get(f"http://127.0.0.1:{proc.metrics_port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return set()
    return {p for p in range(3) if f'stream_consumer_lag{{partition="{p}",topic="{topic}"}}' in text}


@pytest.mark.infra
@pytest.mark.slow
def test_kill9_one_of_two_members_survivor_takes_over_exactly_once(kafka_broker, topics, feast_world, tmp_path):
    from kafka import KafkaProducer

    topic = topics["interactions"]
    cfg = stream_config(kafka_broker, topics, feast_world, tmp_path / "lake", batch_size=200)
    committed = lambda: committed_offsets(kafka_broker.bootstrap, cfg.group_id, topic)  # noqa: E731
    members = lambda: group_assignment(kafka_broker.bootstrap, cfg.group_id, topic)  # noqa: E731
    first = Subprocess(cfg, tmp_path / "member1.log")
    second = None
    try:
        wait_for(lambda: members() == [{0, 1, 2}], 120, "the first member to own all 3 partitions", every_s=0.5)
        second = Subprocess(cfg, tmp_path / "member2.log")
        owned = wait_for(lambda: (m := members()) and len(m) == 2 and all(m) and m, 120,
                         "a stable group of 2 members, each owning interactions partitions", every_s=0.5)
        assert sorted(map(len, owned)) == [1, 2] and set().union(*owned) == {0, 1, 2}
        victim_parts = wait_for(lambda: owned_by(second, topic), 30, "the second member's lag gauges")
        assert victim_parts in owned

        events = make_events(N_EVENTS, seed=4)
        p = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all", linger_ms=20, batch_size=256_000)
        for e in events:
            p.send(topic, key=key_of(e), value=encode(e))
        for e in events[:300]:  # producer retries: the same event_id twice
            p.send(topic, key=key_of(e), value=encode(e))
        p.flush()
        p.close()
        end = end_offsets(kafka_broker.bootstrap, topic)
        assert sum(end.values()) == N_EVENTS + 300
        victim_end = sum(end[q] for q in victim_parts)
        victim_done = lambda: sum(committed()[q] for q in victim_parts)  # noqa: E731
        wait_for(lambda: victim_done() >= victim_end // 4, 180, "a quarter of the victim's events committed",
                 every_s=0.1)
        second.kill9()
        assert victim_done() < victim_end, "the victim finished before the kill: the test proved nothing"

        # the group notices (session timeout), rebalances, and the survivor owns everything
        wait_for(lambda: members() == [{0, 1, 2}], 120, "the survivor to own all 3 partitions", every_s=0.5)
        wait_for(lambda: committed() == end, 300, "every offset committed by the survivor", every_s=0.2)
        assert first.proc.poll() is None, first.tail()
        assert first.terminate() == 0, first.tail()
    finally:
        first.cleanup()
        if second is not None:
            second.cleanup()

    lake = read_lake(tmp_path / "lake")
    assert len(lake) == N_EVENTS and lake["event_id"].is_unique
    assert set(lake["event_id"]) == {e.event_id for e in events}
    expect = assert_online_matches_lake(feast_world, lake)
    assert expect["u_cnt_24h"].max() > expect["u_cnt_1h"].max() > 0
