"""Drift scenarios change who arrives and what is attractive, deterministically for a seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.simulator.clicks import session_rng
from services.simulator.replay import Session
from services.simulator.scenarios import (
    NAMES,
    Catalogue,
    GenreShift,
    NewUsers,
    PopularityShock,
    make,
)

CAT = Catalogue({i: (("Sci-Fi",) if i % 5 == 0 else ("Drama",)) for i in range(1, 101)}, max_user_id=50)
T0 = pd.Timestamp("2024-03-01", tz="UTC")
PLAN = [Session(index=j, user_id=1 + j % 50, t=T0 + pd.Timedelta(hours=j), next_items={j + 1: 4.0})
        for j in range(200)]


def test_none_changes_nothing():
    s = make("none", CAT, 0)
    assert s.plan(PLAN) == PLAN and s.attract(PLAN[0]) == {} and s.organic(PLAN[0], session_rng(0, 1, 0)) == []


def test_genre_shift_floors_every_item_of_the_genre():
    s = GenreShift(CAT, genre="Sci-Fi", boost=0.5)
    floor = s.attract(PLAN[0])
    assert set(floor) == {i for i in range(1, 101) if i % 5 == 0} and set(floor.values()) == {0.5}
    with pytest.raises(ValueError, match="Drama"):
        GenreShift(CAT, genre="Western")


def test_new_users_add_unseen_ids_with_real_tastes_deterministically():
    a, b = NewUsers(CAT, seed=1).plan(PLAN), NewUsers(CAT, seed=1).plan(PLAN)
    assert a == b and a != NewUsers(CAT, seed=2).plan(PLAN)
    new = [s for s in a if s.new_user]
    assert 0.2 < len(new) / len(PLAN) < 0.4  # share 0.3
    assert all(s.user_id > CAT.max_user_id for s in new) and len({s.user_id for s in new}) == len(new)
    assert [s.index for s in a] == list(range(len(a)))  # re-indexed: each session its own RNG stream
    twin = {s.t: s.next_items for s in a if not s.new_user}
    assert all(s.next_items == twin[s.t] for s in new)


def test_popularity_shock_starts_midway_and_clicks_its_items():
    s = PopularityShock(CAT, seed=3, n_items=10, at=0.5, boost=0.8, organic_p=0.3)
    plan = s.plan(PLAN)
    assert len(set(s.items)) == 10 and s.items == PopularityShock(CAT, seed=3).items
    before, after = plan[:99], plan[101:]
    assert all(s.attract(x) == {} for x in before)
    assert all(s.attract(x) == dict.fromkeys(s.items, 0.8) for x in after)
    organic = [s.organic(x, session_rng(3, x.user_id, x.index)) for x in after]
    rate = np.mean([bool(o) for o in organic])
    assert 0.15 < rate < 0.45 and all(set(o) <= set(s.items) for o in organic)
    assert not any(s.organic(x, session_rng(3, x.user_id, x.index)) for x in before)


def test_unknown_scenario_names_the_choices():
    with pytest.raises(ValueError, match="genre_shift"):
        make("bogus", CAT, 0)
    assert set(NAMES) == {"none", "genre_shift", "new_users", "popularity_shock"}
