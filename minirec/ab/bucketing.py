"""Deterministic bucketing, bit-for-bit the GrowthBook SDK's (PyPI `growthbook` 4.x).

    user id --str--> value --fnv1a32(seed + value)--> h1 --fnv1a32(str(h1)) % 10000 / 10000--> n in [0, 1)
    n --bucket ranges (weights x coverage)--> variant index, or -1 (outside coverage)

Why copy the SDK's hash instead of importing it: the service needs a
vectorised form (1M ids in a test, whole populations in the readout) and a
dependency-free scalar form on its hot path; tests/ab/test_growthbook_parity.py
checks both against the SDK's own `Experiment` run over many ids.

Two hash versions, as in the SDK:
  * v2 (experiments, holdout): fnv1a32(str(fnv1a32(seed + value))) % 10000 / 10000;
    the second pass fixes v1's bias for similar seeds;
  * v1 (namespaces = our layers): fnv1a32(value + seed) % 1000 / 1000, seed "__" + layer.
The SDK runs FNV-1a over UTF-16 code units (as the JS SDK's charCodeAt loop);
config.py limits seeds to ASCII and values are decimal ids, so bytes, code
points and UTF-16 units all agree and this module hashes characters.

A layer (GrowthBook's namespace) hashes the user once per layer name; each
experiment of that layer owns a disjoint [start, end) slice of it, so two
experiments of one layer never share a user, while two layers, hashed with
different seeds, are independent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FNV_OFFSET = 0x811C9DC5  # FNV-1a 32-bit offset basis
FNV_PRIME = 0x01000193
MASK32 = 0xFFFFFFFF


def fnv1a32(text: str, h: int = FNV_OFFSET) -> int:
    """FNV-1a of `text`, continuing from state `h` (so fnv1a32(b, fnv1a32(a)) == fnv1a32(a + b))."""
    for b in text.encode("latin-1"):  # ASCII only (see the module doc); iterating bytes skips ord()
        h = ((h ^ b) * FNV_PRIME) & MASK32
    return h


def gbhash(seed: str, value: str, version: int = 2) -> float:
    """The SDK's hash of `value` under `seed`, in [0, 1): 4 decimals (v2) or 3 (v1)."""
    if version == 2:
        return (fnv1a32(str(fnv1a32(value, _seed_state(seed)))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(seed, fnv1a32(value)) % 1000) / 1000
    raise ValueError(f"hash version must be 1 or 2, got {version}")


_SEED_STATES: dict[str, int] = {}


def _seed_state(seed: str) -> int:
    """FNV state after the seed (v2 hashes seed + value: the seed's part is the same for every user)."""
    h = _SEED_STATES.get(seed)
    if h is None:
        h = fnv1a32(seed)
        if len(_SEED_STATES) < 4096:  # experiments x a few: bounded even if callers pass arbitrary seeds
            _SEED_STATES[seed] = h
    return h


def bucket_ranges(weights: Sequence[float], coverage: float = 1.0) -> list[tuple[float, float]]:
    """[start, end) of each variant: variant i owns coverage x weight_i of its weight's slice.

    Same layout as the SDK: slices laid end to end by weight, each shrunk from its start
    by `coverage`, so raising coverage only adds users (nobody changes arm)."""
    coverage = min(max(coverage, 0.0), 1.0)
    ranges, cum = [], 0.0
    for w in weights:
        start = cum
        cum += w
        ranges.append((start, start + coverage * w))
    return ranges


def choose(n: float, ranges: Sequence[tuple[float, float]]) -> int:
    """Index of the range holding n, or -1."""
    for i, (lo, hi) in enumerate(ranges):
        if lo <= n < hi:
            return i
    return -1


# ------------------------------------------------------------------ vectorised (numpy) forms
def _digits(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative integers -> ((width, n) uint32 matrix of decimal ASCII digits, RIGHT-aligned, lengths).

    Id i's string is column i's last `length[i]` rows; the rows before are padding that
    _fnv_continue skips. Position-major so each step of the hash reads contiguous memory."""
    x = np.asarray(ids)
    dtype = np.uint32 if x.size and int(x.max()) < 2**32 else np.uint64  # 32-bit division is faster
    x = x.astype(dtype)  # a copy: the loop divides it in place
    if x.size == 0:
        return np.zeros((1, 0), dtype=np.uint32), np.ones(0, dtype=np.int64)
    width = len(str(int(x.max())))
    mat = np.empty((width, x.size), dtype=np.uint32)
    length = np.ones(x.size, dtype=np.int64)
    ten = dtype(10)
    for k in range(width):  # k-th digit from the right
        mat[width - 1 - k] = (x % ten).astype(np.uint32) + ord("0")
        if k:
            length += x > 0
        x //= ten
    return mat, length


def _fnv_continue(h: np.ndarray, mat: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Continue FNV-1a states `h` (uint32; products wrap mod 2**32, which is the algorithm) over each
    id's string in `mat` (see _digits)."""
    prime = np.uint32(FNV_PRIME)
    width = mat.shape[0]
    for j in range(width):
        nxt = (h ^ mat[j]) * prime
        h = np.where(length >= width - j, nxt, h)
    return h


def _fnv_const(h: np.ndarray, text: str) -> np.ndarray:
    prime = np.uint32(FNV_PRIME)
    for ch in text:
        h = (h ^ np.uint32(ord(ch))) * prime
    return h


def gbhash_ids(seed: str, ids: np.ndarray, version: int = 2) -> np.ndarray:
    """gbhash(seed, str(id), version) for every integer id at once (float64 array)."""
    mat, length = _digits(ids)
    if version == 2:
        h1 = _fnv_continue(np.full(mat.shape[1], fnv1a32(seed), dtype=np.uint32), mat, length)  # seed + value
        m2, l2 = _digits(h1)
        h2 = _fnv_continue(np.full(mat.shape[1], FNV_OFFSET, dtype=np.uint32), m2, l2)
        return (h2 % np.uint32(10000)).astype(np.float64) / 10000
    if version == 1:
        h = _fnv_continue(np.full(mat.shape[1], FNV_OFFSET, dtype=np.uint32), mat, length)
        h = _fnv_const(h, seed)
        return (h % np.uint32(1000)).astype(np.float64) / 1000
    raise ValueError(f"hash version must be 1 or 2, got {version}")


def choose_many(n: np.ndarray, ranges: Sequence[tuple[float, float]]) -> np.ndarray:
    """choose() for an array of hash values: int64 variant indices, -1 outside every range."""
    out = np.full(n.shape, -1, dtype=np.int64)
    for i, (lo, hi) in enumerate(ranges):
        out[(n >= lo) & (n < hi) & (out < 0)] = i
    return out
