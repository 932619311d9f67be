"""Training: temporal split, evaluation metrics, baselines, the training loop,
ANN index, quality gate and the model registry."""
