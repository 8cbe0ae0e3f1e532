"""Evaluation in one place: metrics, model prediction, cross-validation, baselines, the PSL
ablation and exported artifacts on the real-sound set."""
