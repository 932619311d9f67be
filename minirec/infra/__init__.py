"""Native infrastructure control: start, check and stop real Kafka, Redis and
Prometheus processes bound to loopback, with state under the run folder."""
