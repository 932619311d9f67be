"""Data layer: MovieLens-100K from the recbole wheel, a synthetic generator with
the same schema, and the canonical table schemas both write."""
