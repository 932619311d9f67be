"""Peeking-safe inference: the mixture sequential probability ratio test (mSPRT).

    estimate d_n of the difference, its variance V_n (shrinking as users arrive), H0: delta = 0
    Lambda_n = sqrt(V_n / (V_n + tau^2)) * exp(tau^2 d_n^2 / (2 V_n (V_n + tau^2)))
    always-valid p_n = min(1, 1 / Lambda_1, ..., 1 / Lambda_n)      (running minimum over the looks)
    confidence sequence: d_n +- sqrt(V_n (V_n + tau^2) / tau^2 * (2 log(1/alpha) + log((V_n + tau^2) / V_n)))

Lambda_n is the likelihood ratio of the data under delta ~ N(0, tau^2) against delta = 0, for a
normal estimate (Johari, Koomen, Pekelis, Walsh, "Peeking at A/B tests", KDD 2017). Under H0 it is
a nonnegative martingale, so by Ville's inequality P(sup_n Lambda_n >= 1/alpha) <= alpha: stopping
at the first look with p_n <= alpha, however often one looks, keeps the false-positive rate at or
below alpha. A fixed-horizon test checked at every look does not (tests/ab/test_peeking.py).

tau is the scale of effects worth detecting: the test is most powerful near |delta| ~ tau; its
validity does not depend on it. The default here is the fixed-horizon MDE-sized tau the caller
passes (the readout uses its CTR standard error at the final sample, x 2).
"""

from __future__ import annotations

import numpy as np


def log_lr(d: np.ndarray, v: np.ndarray, tau: float | np.ndarray) -> np.ndarray:
    """log Lambda for estimates d with variances v (any matching shapes)."""
    t2 = np.asarray(tau, dtype=float) ** 2
    return 0.5 * np.log(v / (v + t2)) + t2 * d**2 / (2 * v * (v + t2))


def always_valid_p(d: np.ndarray, v: np.ndarray, tau: float | np.ndarray) -> np.ndarray:
    """Always-valid p-values along the last axis (the looks, in time order)."""
    p = np.minimum(1.0, np.exp(-log_lr(np.asarray(d, float), np.asarray(v, float), tau)))
    return np.minimum.accumulate(p, axis=-1)


def confidence_sequence(d: np.ndarray, v: np.ndarray, tau: float, alpha: float = 0.05
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) at each look: covers the true difference at every look at once w.p. >= 1 - alpha.

    (Each look's interval; a caller may also intersect them over time.)"""
    d, v = np.asarray(d, float), np.asarray(v, float)
    t2 = tau**2
    half = np.sqrt(v * (v + t2) / t2 * (2 * np.log(1 / alpha) + np.log((v + t2) / v)))
    return d - half, d + half
