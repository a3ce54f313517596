"""Metrics on predictive probabilities ``(n, c)``."""

from probfusion.metrics.classification import accuracy, brier_score, negative_log_likelihood

__all__ = ["accuracy", "brier_score", "negative_log_likelihood"]
