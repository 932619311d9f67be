"""The click model: which items of a served list a simulated user clicks.

A position-based model (PBM; Richardson, Dominowska & Ragno, WWW 2007;
Craswell et al., WSDM 2008; survey: Chuklin, Markov & de Rijke, "Click Models
for Web Search", 2015): a click needs the user to *examine* the position and
to find the item *attractive*, independently,

    P(click | item i at 0-based position p) = exam(p) * attract(i)
    exam(p)    = 1 / log2(p + 2)                       (1.0, 0.63, 0.5, 0.43, ... the DCG discount,
                                                        Järvelin & Kekäläinen 2002)
    attract(i) = max_attract * (2^r - 1) / (2^r_max - 1)   if the user really rated i in the
                                                           held-out period (next items), r its rating
                                                           (the graded-relevance mapping of ERR,
                                                           Chapelle et al., CIKM 2009; r_max = 5)
               = noise                                  otherwise (a small noise click rate)

Parameters (`ClickModel`): `max_attract` (default 0.9: a 5-star next item at
the top is clicked 90 % of the time), `noise` (default 0.02), `r_max` (5).
With the defaults a 4-star next item at position 0 is clicked with
p = 0.9 * 15/31 = 0.435, at position 9 with 0.435 / log2(11) = 0.126.

Determinism: every draw of a session comes from its own generator seeded by
(seed, user_id, session index) (`session_rng`), so the clicks depend neither
on thread timing nor on the order in which sessions run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def session_rng(seed: int, user_id: int, session_index: int) -> np.random.Generator:
    """The generator of one session: a pure function of (seed, user, session index)."""
    return np.random.default_rng(np.random.SeedSequence([seed, user_id, session_index]))


def examination(position: int) -> float:
    """P(the user looks at 0-based `position`) = 1 / log2(position + 2)."""
    if position < 0:
        raise ValueError(f"position must be >= 0, got {position}")
    return 1.0 / math.log2(position + 2)


@dataclass(frozen=True)
class ClickModel:
    max_attract: float = 0.9
    noise: float = 0.02
    r_max: float = 5.0

    def __post_init__(self):
        for name in ("max_attract", "noise"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if self.r_max <= 0:
            raise ValueError(f"r_max must be positive, got {self.r_max}")

    def attractiveness(self, rating: float | None) -> float:
        """attract(i): graded from the held-out rating, or `noise` for an item the user did not rate."""
        if rating is None:
            return self.noise
        r = min(max(float(rating), 0.0), self.r_max)
        return self.max_attract * (2.0**r - 1.0) / (2.0**self.r_max - 1.0)

    def probability(self, position: int, rating: float | None) -> float:
        return examination(position) * self.attractiveness(rating)

    def click(self, items: list[int], next_items: dict[int, float], rng: np.random.Generator,
              attract_floor: dict[int, float] | None = None) -> list[int]:
        """0-based positions clicked in `items` (one uniform draw per position, in order).

        `attract_floor` (item -> attractiveness) lets a drift scenario raise attract(i) of some
        items to at least that value; exam(p) is never changed.
        """
        draws = rng.random(len(items))  # (k,) always k draws, so a scenario never shifts later draws
        out = []
        for p, (item, u) in enumerate(zip(items, draws, strict=True)):
            a = self.attractiveness(next_items.get(item))
            if attract_floor and item in attract_floor:
                a = max(a, attract_floor[item])
            if u < examination(p) * a:
                out.append(p)
        return out
