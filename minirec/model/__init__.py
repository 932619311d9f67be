"""Models: the two-tower retrieval model (one file, minirec.model.two_tower)."""
