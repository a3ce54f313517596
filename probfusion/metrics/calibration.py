r"""Calibration of predictive probabilities: top-label expected calibration error and reliability bins.

The top-label confidence of a sample is its largest class probability; samples are grouped into ``B``
equal-width confidence bins ``(0, 1/B], (1/B, 2/B], ..., ((B-1)/B, 1]`` (a confidence of exactly 0 joins the
first bin), and

.. math::
    \mathrm{ECE} = \sum_{b=1}^{B} \frac{|S_b|}{n} \, \Big| \mathrm{acc}(S_b) - \mathrm{conf}(S_b) \Big|

Cost: O(n c). Reference: Naeini et al., 2015 (AAAI), "Obtaining Well Calibrated Probabilities Using Bayesian
Binning"; Guo et al., 2017 (ICML), "On Calibration of Modern Neural Networks" (15 bins).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["ReliabilityBins", "expected_calibration_error", "reliability_bins"]


@dataclass(frozen=True, eq=False)
class ReliabilityBins:
    """Per-bin statistics of a reliability diagram.

    Attributes:
        edges: A `(B + 1,)` tensor of bin edges from 0 to 1.
        confidence: A `(B,)` tensor of mean top-label confidence per bin (NaN where a bin is empty).
        accuracy: A `(B,)` tensor of accuracy per bin (NaN where a bin is empty).
        count: A `(B,)` tensor of samples per bin.
    """

    edges: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor
    count: torch.Tensor


def reliability_bins(probs: torch.Tensor, labels: torch.Tensor, *, num_bins: int = 15) -> ReliabilityBins:
    """Group samples by top-label confidence into ``num_bins`` equal-width bins.

    Args:
        probs: A `(n, c)` tensor of predictive probabilities (averaged over posterior draws).
        labels: A `(n,)` tensor of labels.
        num_bins: Number of bins B.

    Returns:
        The bins' edges, mean confidence, accuracy and counts.

    Example:
        >>> probs = torch.tensor([[0.9, 0.1], [0.6, 0.4]])
        >>> bins = reliability_bins(probs, torch.tensor([0, 1]), num_bins=2)
        >>> bins.count.tolist(), bins.accuracy.tolist()
        ([0, 2], [nan, 0.5])
    """
    confidence, predicted = probs.max(dim=-1)
    correct = (predicted == labels).to(probs.dtype)
    index = (torch.ceil(confidence * num_bins).long() - 1).clamp(0, num_bins - 1)
    count = torch.bincount(index, minlength=num_bins)
    conf_sum = torch.zeros(num_bins, dtype=probs.dtype, device=probs.device).index_add_(0, index, confidence)
    acc_sum = torch.zeros(num_bins, dtype=probs.dtype, device=probs.device).index_add_(0, index, correct)
    safe = count.clamp_min(1).to(probs.dtype)
    empty = count == 0
    nan = torch.tensor(float("nan"), dtype=probs.dtype, device=probs.device)
    return ReliabilityBins(
        edges=torch.linspace(0.0, 1.0, num_bins + 1, dtype=probs.dtype),
        confidence=torch.where(empty, nan, conf_sum / safe),
        accuracy=torch.where(empty, nan, acc_sum / safe),
        count=count,
    )


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, *, num_bins: int = 15) -> float:
    """Top-label expected calibration error over ``num_bins`` equal-width bins; in [0, 1].

    Args:
        probs: A `(n, c)` tensor of predictive probabilities (averaged over posterior draws).
        labels: A `(n,)` tensor of labels.
        num_bins: Number of bins B (15 by convention).

    Returns:
        The ECE.

    Example:
        >>> probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
        >>> round(expected_calibration_error(probs, torch.tensor([0, 1, 1]), num_bins=2), 6)
        0.066667
    """
    bins = reliability_bins(probs, labels, num_bins=num_bins)
    weight = bins.count.to(probs.dtype) / max(int(labels.shape[0]), 1)
    gap = (bins.accuracy - bins.confidence).abs().nan_to_num(0.0)
    return float((weight * gap).sum())
