"""BentoML service options shared by the recommender and the benchmark floor.

`make bench-serving` compares /recommend with a constant-returning endpoint
"with the same settings"; both decorators take their options from here, so
the comparison cannot drift apart.
"""

from __future__ import annotations

from minirec.settings import get_settings


def service_options(name: str) -> dict:
    """Keyword arguments for `@bentoml.service`: workers, threads, admission limit, no access log."""
    s = get_settings()
    return {
        "name": name,
        "workers": s.recommender_workers,
        "threads": s.recommender_threads,
        # overload is refused early and cheaply with 429s instead of queueing
        "traffic": {"timeout": 30, "max_concurrency": s.recommender_max_concurrency},
        "logging": {"access": {"enabled": False}},
    }
