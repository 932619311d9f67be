"""A/B assignment service: experiments.yaml -> POST /assign -> variant, one Exposure event per assignment.

See services/assignment/README.md; the decisions live in minirec.ab (shared with the readout).
"""
