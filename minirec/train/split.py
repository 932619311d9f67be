"""Global temporal split: one timestamp cut across all users.

train = t < cut_valid, valid = cut_valid <= t < cut_test, test = t >= cut_test.
The cuts are the timestamps at the (1 - valid - test) and (1 - test)
quantiles of the time-sorted log, so every interaction sharing a timestamp
lands on the same side. This is the protocol that matches production (train
on the past, serve the future); random or leave-one-out splits leak the
future into training and flatter every model.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


class SplitError(ValueError):
    """The window cannot be split (empty log, empty partition)."""


@dataclass(frozen=True)
class TemporalSplit:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    start: pd.Timestamp  # first event (UTC)
    cut_valid: pd.Timestamp  # first timestamp of the validation period
    cut_test: pd.Timestamp  # first timestamp of the test period
    end: pd.Timestamp  # last event (UTC)

    def window(self) -> dict[str, str]:
        """ISO timestamps of the data window, for metadata."""
        return {k: getattr(self, k).isoformat() for k in ("start", "cut_valid", "cut_test", "end")}


def temporal_split(inter: pd.DataFrame, valid_frac: float = 0.1, test_frac: float = 0.1) -> TemporalSplit:
    """Split the interaction log by two global timestamp cuts (fractions of rows)."""
    if not 0 < valid_frac < 1 or not 0 < test_frac < 1 or valid_frac + test_frac >= 1:
        raise SplitError(f"fractions must be in (0, 1) and sum below 1, got {valid_frac}, {test_frac}")
    if len(inter) == 0:
        raise SplitError("the training window is empty: no interactions to split; check the data "
                         "interval or run `make data`")
    df = inter.sort_values("event_timestamp", kind="stable").reset_index(drop=True)
    ts = df["event_timestamp"]
    n = len(df)
    cut_valid = ts.iloc[min(int(n * (1 - valid_frac - test_frac)), n - 1)]
    cut_test = ts.iloc[min(int(n * (1 - test_frac)), n - 1)]
    parts = {
        "train": df[ts < cut_valid],
        "valid": df[(ts >= cut_valid) & (ts < cut_test)],
        "test": df[ts >= cut_test],
    }
    empty = [k for k, v in parts.items() if len(v) == 0]
    if empty:
        raise SplitError(f"the {', '.join(empty)} period is empty ({n} interactions between "
                         f"{ts.iloc[0]} and {ts.iloc[-1]}); the training window is too small to split")
    return TemporalSplit(**{k: v.reset_index(drop=True) for k, v in parts.items()},
                         start=ts.iloc[0], cut_valid=cut_valid, cut_test=cut_test, end=ts.iloc[-1])
