"""Two lake writers on one lake (two members of the consumer group): a replay by the member that took a
partition over appends nothing the other member already wrote, even after it cached that folder."""

from __future__ import annotations

from datetime import UTC, datetime

from minirec.events import Interaction
from services.stream.lake import LakeWriter
from tests.stream.conftest import read_lake


def _events(n: int, user: int) -> list[Interaction]:
    t = datetime(2026, 1, 5, 12, tzinfo=UTC)
    return [Interaction(user_id=user, item_id=i + 1, action="click", event_time=t) for i in range(n)]


def test_takeover_replay_skips_events_the_dead_member_wrote(tmp_path):
    survivor, victim = LakeWriter(tmp_path), LakeWriter(tmp_path)
    assert all(survivor.write(_events(5, user=1)))  # survivor caches the date folder now
    lost_batch = _events(7, user=2)
    assert all(victim.write(lost_batch))  # victim writes its batch, then dies before committing
    # the survivor is handed the victim's partition and replays the uncommitted batch
    assert survivor.write(lost_batch) == [False] * 7
    lake = read_lake(tmp_path)
    assert len(lake) == 12 and lake["event_id"].is_unique
