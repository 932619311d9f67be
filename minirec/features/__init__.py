"""Features: offline feature tables derived from the event lake, the Feast
store wrapper (apply, point-in-time joins, materialisation) and the training
and evaluation frames built from them."""
