"""Who gets which variant: the decision the assignment service serves, as plain functions.

    user id --holdout hash < share?------------------> control, reason "holdout"
            --layer hash outside the experiment's slice -> control, reason "outside_layer"
            --audience (new / returning) does not match -> control, reason "audience_mismatch"
                                   (unknown: Redis down) -> control, reason "audience_unknown"
            --experiment hash outside coverage ---------> control, reason "outside_coverage"
            --experiment hash in variant i's range -----> variant i, reason "assigned"

Only "assigned" puts the user in the experiment (`in_experiment`, one Exposure event); every
other user is served the control and is not part of the analysis. The order is the SDK's
(namespace, then targeting, then the hash), with the global holdout first; the audience is asked
last-but-one so the Redis lookup happens only for users who could enter.

Equal to the GrowthBook SDK: the holdout is an SDK experiment with weights [share, 1 - share]
and seed = the holdout salt (variation 0 = held out); an experiment is an SDK experiment with
key = name, seed = salt, hashVersion 2, its weights and coverage, and namespace
(layer, start, end). tests/ab/test_growthbook_parity.py runs both through the SDK.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from minirec.ab.bucketing import bucket_ranges, choose, choose_many, gbhash, gbhash_ids
from minirec.ab.config import Audience, Experiment, ExperimentsConfig

REASONS = ("assigned", "holdout", "outside_layer", "audience_mismatch", "audience_unknown", "outside_coverage")


class ExperimentError(LookupError):
    """The request names an experiment that cannot assign now; `code` says why (the service's 4xx)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Assignment:
    experiment: str
    variant: str  # what to serve: the assigned variant, or the control when not in the experiment
    in_experiment: bool
    reason: str  # one of REASONS


def layer_seed(layer: str) -> str:
    """The SDK's namespace seed (its v1 hash of id + "__" + namespace id)."""
    return "__" + layer


class Assigner:
    """Decisions over one validated ExperimentsConfig (immutable: reload = a new Assigner)."""

    def __init__(self, cfg: ExperimentsConfig):
        self.cfg = cfg
        self._ranges = {name: bucket_ranges(e.weights, e.coverage) for name, e in cfg.experiments.items()}
        self._names = {name: list(e.variants) for name, e in cfg.experiments.items()}

    def experiment(self, name: str, now: datetime) -> Experiment:
        """The running experiment `name`; ExperimentError (unknown / scheduled / stopped) otherwise."""
        e = self.cfg.experiments.get(name)
        if e is None:
            known = ", ".join(sorted(self.cfg.experiments)) or "none"
            raise ExperimentError("unknown_experiment", f"experiment {name!r} is not defined (known: {known}); "
                                  "see GET /experiments")
        status = e.status(now)
        if status == "stopped":
            raise ExperimentError("experiment_stopped", f"experiment {name!r} stopped at {e.stop.isoformat()}; "
                                  "serve the control, or extend `stop` in the experiments file")
        if status == "scheduled":
            raise ExperimentError("experiment_not_started", f"experiment {name!r} starts at "
                                  f"{e.start.isoformat()}; serve the control until then")
        return e

    def needs_audience(self, e: Experiment, user_id: int) -> bool:
        """True when assign() would ask `returning` for this user (so a caller can fetch it first)."""
        if e.audience == Audience.all or self.held_out(user_id):
            return False
        if e.layer is not None:
            return e.layer_range[0] <= gbhash(layer_seed(e.layer), str(user_id), 1) < e.layer_range[1]
        return True

    def held_out(self, user_id: int) -> bool:
        h = self.cfg.holdout
        return h is not None and gbhash(h.salt, str(user_id), 2) < h.share

    def assign(self, name: str, user_id: int, now: datetime,
               returning: Callable[[int], bool | None] | None = None, *, checked: Experiment | None = None
               ) -> Assignment:
        """The decision for one user; `returning(user_id)` answers True / False / None (unknown)
        and is called only when the experiment targets an audience and the user could enter.
        `checked`: the Experiment the caller already got from experiment(name, now) (skips the check)."""
        e = checked if checked is not None and checked.name == name else self.experiment(name, now)
        value = str(user_id)

        def out(reason: str) -> Assignment:
            return Assignment(name, e.control, False, reason)

        if self.held_out(user_id):
            return out("holdout")
        if e.layer is not None:
            n = gbhash(layer_seed(e.layer), value, 1)
            if not e.layer_range[0] <= n < e.layer_range[1]:
                return out("outside_layer")
        if e.audience != Audience.all:
            seen = returning(user_id) if returning is not None else None
            if seen is None:
                return out("audience_unknown")
            if seen != (e.audience == Audience.returning):
                return out("audience_mismatch")
        i = choose(gbhash(e.salt, value, 2), self._ranges[name])
        if i < 0:
            return out("outside_coverage")
        return Assignment(name, self._names[name][i], True, "assigned")

    def assign_many(self, name: str, user_ids: np.ndarray, returning: np.ndarray | None = None) -> np.ndarray:
        """Vectorised assign() ignoring the schedule: variant index per user, -1 when not in the experiment.

        `returning` (bool array) is the audience attribute; None = everyone matches."""
        e = self.cfg.experiments[name]
        ids = np.asarray(user_ids)
        ok = np.ones(ids.shape, dtype=bool)
        h = self.cfg.holdout
        if h is not None:
            ok &= gbhash_ids(h.salt, ids, 2) >= h.share
        if e.layer is not None:
            n = gbhash_ids(layer_seed(e.layer), ids, 1)
            ok &= (n >= e.layer_range[0]) & (n < e.layer_range[1])
        if e.audience != Audience.all and returning is not None:
            ok &= np.asarray(returning, dtype=bool) == (e.audience == Audience.returning)
        idx = choose_many(gbhash_ids(e.salt, ids, 2), self._ranges[name])
        return np.where(ok, idx, -1)
