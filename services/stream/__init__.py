"""Kafka stream processor: interactions -> Feast online store + seen-sets; every event -> parquet lake.

See services/stream/README.md and consumer.py for the data path.
"""
