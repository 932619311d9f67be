"""Drift scenarios: switchable changes to who arrives and what they click.

Each scenario can change three things, and nothing else (the click model's
examination curve is never touched):
  * `plan(sessions)`: the replayed sessions (e.g. add unseen users);
  * `attract(session)`: {item_id: attractiveness floor} for that session's clicks;
  * `organic(session, rng)`: items clicked outside any served list (position None).

    none              the held-out period as it happened.
    genre_shift       clicks favour one genre (default Sci-Fi): every item of that genre is at least
                      `boost` (0.5) attractive, rated or not, so its share of clicks rises above the
                      model's share of impressions.
    new_users         an influx of unseen user ids: with probability `share` (0.3) each session
                      spawns a twin session at the same time by a new id (max known id + 1, + 2, ...)
                      with the same next items, so the taste is real but the model has no features
                      (the recommender answers with its cold-start popularity list).
    popularity_shock  from `at` (0.5) of the replayed time span on, `n_items` (10) items drawn by the
                      seed from the catalogue are clicked a lot: `boost` (0.8) attractive when shown,
                      and each session clicks one of them organically with probability `organic_p` (0.3).

All randomness comes from the seed (`plan`) or the session's own generator
(`organic`), so a scenario run is as deterministic as the plain replay.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from services.simulator.replay import Session

NAMES = ("none", "genre_shift", "new_users", "popularity_shock")


@dataclass(frozen=True)
class Catalogue:
    """What scenarios need to know about the world: item genres, the largest known user id."""

    item_genres: dict[int, tuple[str, ...]]
    max_user_id: int

    @classmethod
    def load(cls, data_dir: Path) -> Catalogue:
        items = pd.read_parquet(Path(data_dir) / "items.parquet", columns=["item_id", "genres"])
        users = pd.read_parquet(Path(data_dir) / "users.parquet", columns=["user_id"])
        inter = pd.read_parquet(Path(data_dir) / "interactions.parquet", columns=["user_id"])
        genres = {int(i): tuple(g) for i, g in zip(items["item_id"], items["genres"], strict=True)}
        return cls(genres, int(max(users["user_id"].max(), inter["user_id"].max())))


class Scenario:
    """`none`: the held-out period as it happened."""

    name = "none"

    def plan(self, sessions: list[Session]) -> list[Session]:
        return sessions

    def attract(self, session: Session) -> dict[int, float]:
        return {}

    def organic(self, session: Session, rng: np.random.Generator) -> list[int]:
        return []


class GenreShift(Scenario):
    name = "genre_shift"

    def __init__(self, catalogue: Catalogue, genre: str = "Sci-Fi", boost: float = 0.5):
        self.items = [i for i, g in catalogue.item_genres.items() if genre in g]
        if not self.items:
            known = sorted({x for g in catalogue.item_genres.values() for x in g})
            raise ValueError(f"no item has genre {genre!r}; choose one of {known}")
        self.genre, self.boost = genre, boost
        self._floor = dict.fromkeys(self.items, boost)

    def attract(self, session: Session) -> dict[int, float]:
        return self._floor  # a floor: a next item rated higher keeps its own attractiveness


class NewUsers(Scenario):
    name = "new_users"

    def __init__(self, catalogue: Catalogue, seed: int, share: float = 0.3):
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        self.first_id, self.seed, self.share = catalogue.max_user_id + 1, seed, share

    def plan(self, sessions: list[Session]) -> list[Session]:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x5EED]))
        out, n_new = [], 0
        for s, u in zip(sessions, rng.random(len(sessions)), strict=True):
            out.append(s)
            if u < self.share:
                out.append(replace(s, user_id=self.first_id + n_new, new_user=True))
                n_new += 1
        return [replace(s, index=j) for j, s in enumerate(out)]


class PopularityShock(Scenario):
    name = "popularity_shock"

    def __init__(self, catalogue: Catalogue, seed: int, n_items: int = 10, at: float = 0.5,
                 boost: float = 0.8, organic_p: float = 0.3):
        ids = np.array(sorted(catalogue.item_genres))
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5AC4]))
        self.items = [int(i) for i in rng.choice(ids, size=min(n_items, len(ids)), replace=False)]
        self.at, self.boost, self.organic_p = at, boost, organic_p
        self.t_shock: pd.Timestamp | None = None

    def plan(self, sessions: list[Session]) -> list[Session]:
        if sessions:
            t0, t1 = min(s.t for s in sessions), max(s.t for s in sessions)
            self.t_shock = t0 + (t1 - t0) * self.at
        return sessions

    def _after(self, session: Session) -> bool:
        return self.t_shock is not None and session.t >= self.t_shock

    def attract(self, session: Session) -> dict[int, float]:
        return dict.fromkeys(self.items, self.boost) if self._after(session) else {}

    def organic(self, session: Session, rng: np.random.Generator) -> list[int]:
        if not self._after(session) or rng.random() >= self.organic_p:
            return []
        return [self.items[int(rng.integers(len(self.items)))]]


def make(name: str, catalogue: Catalogue, seed: int) -> Scenario:
    """The scenario called `name` (one of NAMES) with its default parameters."""
    if name == "none":
        return Scenario()
    if name == "genre_shift":
        return GenreShift(catalogue)
    if name == "new_users":
        return NewUsers(catalogue, seed)
    if name == "popularity_shock":
        return PopularityShock(catalogue, seed)
    raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(NAMES)}")
