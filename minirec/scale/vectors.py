"""Synthetic two-tower vectors with the structure a trained model gives, for ANN benchmarks.

Uniform random vectors are the wrong test set for ANN: in 64 dimensions every
point is about equally far from every other, so graph and cluster indexes look
far worse (no neighbourhoods to exploit) or, at tiny sizes, misleadingly fine.
Trained embeddings are clustered. This generator follows the same world as
minirec.data.synthetic (18 taste clusters, power-law popularity) and the same
vector layout as minirec.model.two_tower:

    item vector  = [v, log1p(popularity)]     (M, d+1), v unit-norm
    query vector = [u / temperature, w]       (B, d+1), u unit-norm

v = normalise(genre centre + sub-topic offset + item noise): 18 genre centres,
~sqrt(M) sub-topics (each under one genre), per-item isotropic noise.
u = normalise(a user's genre centre + one of its sub-topics + noise), the
"affinity" a user has to their own cluster. Popularity weights follow r^-alpha
over a shuffled rank, as in the interaction generator, scaled to counts.
"""

from __future__ import annotations

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def two_tower_vectors(n_items: int, n_queries: int, dim: int = 64, n_genres: int = 18,
                      alpha: float = 1.0, temperature: float = 0.05, pop_weight: float = 0.5,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """-> ((n_items, dim+1) item vectors, (n_queries, dim+1) query vectors), float32.

    Spreads (genre 1.0, sub-topic 0.6, item noise 0.45 per unit vector) are chosen so
    a query's top-100 spans a few sub-topics of its genre plus popular items elsewhere,
    as in MovieLens retrievals; they are not fitted to any measured model."""
    rng = np.random.default_rng(seed)
    n_topics = max(n_genres, int(np.sqrt(n_items)))
    genre = _unit(rng.standard_normal((n_genres, dim)))  # (G, d)
    topic_genre = rng.integers(0, n_genres, n_topics)  # (T,)
    topic = genre[topic_genre] + 0.6 * _unit(rng.standard_normal((n_topics, dim)))  # (T, d)

    item_topic = rng.integers(0, n_topics, n_items)  # (M,)
    v = np.empty((n_items, dim), dtype=np.float32)
    for lo in range(0, n_items, 200_000):  # chunks: bounded temporary memory at 1M items
        hi = min(lo + 200_000, n_items)
        noise = 0.45 * _unit(rng.standard_normal((hi - lo, dim)))
        v[lo:hi] = _unit(topic[item_topic[lo:hi]] + noise)
    ranks = rng.permutation(n_items) + 1
    counts = 1e4 * ranks.astype(np.float64) ** (-alpha)  # expected interactions of the top item ~ 1e4
    items = np.hstack([v, np.log1p(counts)[:, None]]).astype(np.float32)

    q_topic = rng.integers(0, n_topics, n_queries)
    u = _unit(topic[q_topic] + 0.45 * _unit(rng.standard_normal((n_queries, dim))))
    queries = np.hstack([u / temperature, np.full((n_queries, 1), pop_weight)]).astype(np.float32)
    return np.ascontiguousarray(items), np.ascontiguousarray(queries)
