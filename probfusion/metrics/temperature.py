r"""Temperature scaling: the one-parameter recalibration of predictive probabilities (Guo et al., 2017).

For predictive probabilities :math:`p_{ik}` and a temperature :math:`T > 0`,

.. math::
    p^{(T)}_{ik} = \frac{p_{ik}^{1/T}}{\sum_j p_{ij}^{1/T}}, \qquad
    \mathrm{NLL}(T) = \frac{1}{n} \sum_i \Big[ \log \sum_j p_{ij}^{1/T} - \tfrac{1}{T} \log p_{i y_i} \Big],

which for a softmax model is the softmax of its logits divided by T (the log-normaliser cancels). NLL is
convex in :math:`\beta = 1/T` (a log-sum-exp of functions linear in it), so the minimiser over a bounded interval
is found by golden-section search to any tolerance, deterministically.

Why the lower bound of 1 by default: training grows a classifier's confidence after it stops improving its
ranking of the classes, so the validation NLL rises while the accuracy does not fall. The *calibrated* NLL,
``min_T NLL(T)`` over ``T >= 1``, removes that overconfidence and keeps the ranking, so early stopping on it
selects the epoch that discriminates best, and the same T fitted at the end recalibrates the model. Sharpening
(``T < 1``) is excluded because on a small validation set that a model separates perfectly the unbounded
optimum is ``T -> 0``, a degenerate certainty no validation set of a few dozen rows supports.

Cost: O(n c) per NLL evaluation, about 60 evaluations. Reference: Guo et al., 2017 (ICML), "On Calibration of
Modern Neural Networks"; Ashukha et al., 2020 (ICLR), "Pitfalls of In-Domain Uncertainty Estimation and
Ensembling in Deep Learning" (the calibrated log-likelihood as the quantity to compare models by).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from probfusion.errors import ConfigError

__all__ = ["TemperatureFit", "fit_temperature", "tempered_log_probs"]

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
_ITERATIONS = 60  # the bracket shrinks by 0.618 per step: 60 steps leave 1e-12 of it


@dataclass(frozen=True)
class TemperatureFit:
    """The fitted temperature and the NLL at it (and at T = 1, for comparison).

    Attributes:
        temperature: The minimising T within the bounds.
        nll: Mean NLL of the tempered probabilities.
        nll_untempered: Mean NLL at T = 1.
    """

    temperature: float
    nll: float
    nll_untempered: float


def tempered_log_probs(log_probs: Tensor, temperature: float | Tensor) -> Tensor:
    """Log-probabilities ``log softmax(log_probs / T)``.

    Args:
        log_probs: A `(n, c)` tensor of log-probabilities or logits.
        temperature: T > 0.

    Returns:
        A `(n, c)` tensor of normalised log-probabilities.
    """
    return torch.log_softmax(log_probs / temperature, dim=-1)


def _nll(log_probs: Tensor, labels: Tensor, beta: float) -> float:
    scaled = log_probs * beta
    return float((torch.logsumexp(scaled, dim=-1) - scaled.gather(-1, labels[:, None]).squeeze(-1)).mean())


def fit_temperature(
    log_probs: Tensor, labels: Tensor, *, min_temperature: float = 1.0, max_temperature: float = 100.0
) -> TemperatureFit:
    """The temperature in ``[min_temperature, max_temperature]`` that minimises the mean NLL.

    Args:
        log_probs: A `(n, c)` tensor of log-probabilities (``log`` of predictive probabilities) or logits.
        labels: A `(n,)` tensor of class indices.
        min_temperature: Lower bound of T (default 1: soften only; see the module docstring).
        max_temperature: Upper bound of T.

    Returns:
        The fitted temperature and the NLL at it.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
        >>> fit = fit_temperature(5 * logits, torch.tensor([0, 1, 1]))
        >>> round(fit.temperature, 1), fit.nll < fit.nll_untempered
        (14.4, True)
    """
    if not 0.0 < min_temperature <= max_temperature:
        raise ConfigError(
            f"fit_temperature needs 0 < min_temperature <= max_temperature; got {min_temperature}, {max_temperature}."
        )
    if log_probs.ndim != 2 or labels.shape != log_probs.shape[:1]:
        raise ConfigError(
            f"fit_temperature takes (n, c) log-probabilities and (n,) labels; got {tuple(log_probs.shape)} and "
            f"{tuple(labels.shape)}."
        )
    # float64 and a floor on log-probabilities of exactly 0 (log 0 = -inf would make 0 * -inf = nan at beta -> 0).
    values = log_probs.detach().double().clamp_min(-1e4)
    labels = labels.detach().long()
    low, high = 1.0 / max_temperature, 1.0 / min_temperature  # bracket of beta = 1 / T
    a, b = low, high
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = _nll(values, labels, c), _nll(values, labels, d)
    for _ in range(_ITERATIONS):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - _GOLDEN * (b - a)
            fc = _nll(values, labels, c)
        else:
            a, c, fc = c, d, fd
            d = a + _GOLDEN * (b - a)
            fd = _nll(values, labels, d)
    # A convex minimum may sit on a bound: the bracket's midpoint against both ends.
    nll, beta = min(((_nll(values, labels, x), x) for x in ((a + b) / 2.0, low, high)), key=lambda pair: pair[0])
    return TemperatureFit(temperature=1.0 / beta, nll=nll, nll_untempered=_nll(values, labels, 1.0))
