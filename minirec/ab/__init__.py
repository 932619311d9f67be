"""A/B testing in the core package: bucketing and the experiments file (used by services/assignment),
the client the simulator calls, and the readout statistics (delta method, CUPED, SRM gate,
power, sequential test) with their simulation studies.

    bucketing.py   the GrowthBook-equal hash and bucket ranges (scalar and numpy forms)
    config.py      experiments.yaml: schema, validation with line numbers
    assign.py      holdout -> layer -> audience -> coverage -> variant
    client.py      assign(base_url, user_id, experiment) -> variant | None (never raises)
    stats.py       Welch t, two-proportion z, delta method, CUPED, SRM, power / MDE / sample size
    sequential.py  mSPRT always-valid p-values and confidence sequences
    readout.py     lake -> per-user table -> report.{md,png,json} (`make ab-report EXP=...`)
    validate.py    simulation studies (`make ab-validate`)
"""
