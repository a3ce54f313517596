"""Metrics on predictive probabilities: classification, calibration, uncertainty, detection, robustness, selection."""

from probfusion.metrics.calibration import ReliabilityBins, expected_calibration_error, reliability_bins
from probfusion.metrics.classification import accuracy, brier_score, negative_log_likelihood
from probfusion.metrics.detection import detection_auroc
from probfusion.metrics.robustness import effective_robustness, relative_robustness
from probfusion.metrics.selective import RiskCoverage, aurc, coverage_threshold, risk_coverage
from probfusion.metrics.uncertainty import mutual_information, predictive_entropy

__all__ = [
    "ReliabilityBins",
    "RiskCoverage",
    "accuracy",
    "aurc",
    "brier_score",
    "coverage_threshold",
    "detection_auroc",
    "effective_robustness",
    "expected_calibration_error",
    "mutual_information",
    "negative_log_likelihood",
    "predictive_entropy",
    "relative_robustness",
    "reliability_bins",
    "risk_coverage",
]
