"""Traffic simulator: replays MovieLens' held-out period as live users against the recommender and
emits `Interaction` events to Kafka (`python -m services.simulator --help`, `make simulate ARGS=...`)."""
