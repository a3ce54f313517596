r"""Selective prediction: answer only where the model is sure, and measure what abstaining buys.

Rows are ranked by an uncertainty score u (entropy, mutual information, vacuity); at coverage :math:`c` the
model answers the :math:`\lceil c n \rceil` most certain rows and abstains on the rest. The risk at that coverage
is the error rate on the answered rows; the risk-coverage curve traces it from the single most certain row to
every row, and its area (AURC) is one number for how well u orders errors last:

.. math::
    \mathrm{AURC} = \sum_g (c_g - c_{g-1})\, \mathrm{risk}(c_g),

over the distinct values g of u (rows with equal u enter together), which is
:math:`\tfrac1n \sum_{k=1}^n \mathrm{risk}(k / n)` when no two scores tie. Lower is better; an uncertainty that
orders rows at random has the overall error rate as its expected AURC. Cost: O(n log n).
Reference: Geifman, Uziel and El-Yaniv, 2019 (ICLR), "Bias-Reduced Uncertainty Estimation for Deep Neural
Classifiers"; El-Yaniv and Wiener, 2010 (JMLR), "On the Foundations of Noise-free Selective Classification".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from probfusion.errors import InputDataError

__all__ = ["RiskCoverage", "aurc", "coverage_threshold", "risk_coverage"]


def _as_array(values: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    array = np.asarray(array, dtype=np.float64).ravel()
    if array.size == 0:
        raise InputDataError(f"Selective prediction needs at least one row; {name} is empty.")
    if not np.isfinite(array).all():
        raise InputDataError(f"{name} holds NaN or inf; check the predictive probabilities.")
    return array


@dataclass(frozen=True)
class RiskCoverage:
    """A risk-coverage curve, one point per distinct uncertainty value.

    Attributes:
        threshold: ``(g,)`` uncertainty thresholds, increasing; rows with ``u <= threshold`` are answered.
        coverage: ``(g,)`` share of rows answered at each threshold, increasing to 1.
        risk: ``(g,)`` error rate on the answered rows.
    """

    threshold: np.ndarray
    coverage: np.ndarray
    risk: np.ndarray


def risk_coverage(uncertainty: torch.Tensor | np.ndarray, correct: torch.Tensor | np.ndarray) -> RiskCoverage:
    """The risk-coverage curve of an uncertainty score.

    Args:
        uncertainty: A ``(n,)`` score; higher means less sure.
        correct: A ``(n,)`` boolean (or 0/1) array: whether each row's prediction is right.

    Returns:
        The curve; rows with equal uncertainty enter at one point.

    Raises:
        InputDataError: On empty, NaN or mismatched inputs.

    Example:
        >>> curve = risk_coverage(np.array([0.1, 0.2, 0.2, 0.4]), np.array([1, 1, 0, 1]))
        >>> curve.coverage.tolist(), curve.risk.round(4).tolist()
        ([0.25, 0.75, 1.0], [0.0, 0.3333, 0.25])
    """
    u = _as_array(uncertainty, "uncertainty")
    ok = _as_array(correct, "correct")
    if u.shape != ok.shape:
        raise InputDataError(f"uncertainty has {u.size} rows but correct has {ok.size}; give one value per row.")
    order = np.argsort(u, kind="stable")
    u, errors = u[order], 1.0 - ok[order]
    ends = np.flatnonzero(np.r_[np.diff(u) > 0, True])  # the last row of every group of equal scores
    answered = ends + 1
    return RiskCoverage(threshold=u[ends], coverage=answered / u.size, risk=np.cumsum(errors)[ends] / answered)


def aurc(uncertainty: torch.Tensor | np.ndarray, correct: torch.Tensor | np.ndarray) -> float:
    """Area under the risk-coverage curve (lower is better).

    Args:
        uncertainty: A ``(n,)`` score; higher means less sure.
        correct: A ``(n,)`` boolean (or 0/1) array: whether each row's prediction is right.

    Returns:
        The AURC in [0, 1].

    Example:
        >>> round(aurc(np.array([0.1, 0.2, 0.3, 0.4]), np.array([1, 1, 0, 1])), 4)
        0.1458
    """
    curve = risk_coverage(uncertainty, correct)
    widths = np.diff(np.r_[0.0, curve.coverage])
    return float(np.sum(widths * curve.risk))


def coverage_threshold(uncertainty: torch.Tensor | np.ndarray, coverage: float) -> float:
    """The smallest threshold t such that at least ``coverage`` of the rows have ``u <= t``.

    Chosen on validation rows, it flags new rows with ``u > t`` for a person; on rows like the validation ones
    the model then answers about ``coverage`` of them.

    Args:
        uncertainty: A ``(n,)`` score of the rows the threshold is chosen on.
        coverage: The target share of answered rows, in (0, 1].

    Returns:
        The threshold.

    Example:
        >>> coverage_threshold(np.array([0.4, 0.1, 0.3, 0.2]), 0.5)
        0.2
    """
    if not 0.0 < coverage <= 1.0:
        raise InputDataError(f"coverage must lie in (0, 1]; got {coverage}.")
    u = np.sort(_as_array(uncertainty, "uncertainty"))
    return float(u[max(math.ceil(coverage * u.size - 1e-9), 1) - 1])
