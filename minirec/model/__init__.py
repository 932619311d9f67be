"""Models: the two-tower retrieval model (minirec.model.two_tower) and the pandas-free copy of
its user encoder that serving uses (minirec.model.user_encoder), kept beside the model it must match."""
