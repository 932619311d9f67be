"""Scale curves: how each part's cost grows with data size (`make bench-scale`, loadtests/bench_scale.py).

One module per curve; each exposes plain functions that return JSON-ready rows."""
