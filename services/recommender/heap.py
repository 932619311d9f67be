"""The worker's long-lived heap, moved out of the cyclic garbage collector's way.

A recommender worker holds ~N objects that live as long as the process: the
modules of torch, Feast, pandas, pyarrow, pydantic and BentoML, and the loaded
model. CPython's full collection (generation 2) walks every one of them; under
the benchmark's 100 req/s it ran every ~2 s and each stopped the worker (GIL
held) for a long pause: the recommender's latency tail (loadtests/bench_serving.py,
numbers in the README). `gc.freeze()` (CPython >= 3.7) moves every object alive
at that moment into a permanent generation the collector never scans again, so
a later full collection walks only what requests created since. Reference
counting still frees frozen objects whose count drops to zero (an old model
version after a swap); only garbage *cycles* among them are kept, a bounded cost
paid once per model load.

RECOMMENDER_GC_FREEZE=false turns it off (the benchmark's before/after).
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)

_collected = False


def settle() -> int:
    """Collect once (the first call), then freeze everything alive; returns the frozen count."""
    global _collected
    if not _collected:  # one full pass before the first freeze: start-up garbage is not kept forever
        gc.collect()
        _collected = True
    gc.freeze()
    n = gc.get_freeze_count()
    log.info("heap settled: %d objects frozen out of the cyclic GC", n)
    return n
