r"""Uncertainty of a posterior predictive from ``(s, n, c)`` per-draw probabilities: entropy and its split.

With ``p_k = p(y | x, theta_k)`` for draws ``k = 1..s`` and ``p_bar`` their mean, the predictive entropy splits
into an aleatoric part (the mean entropy of the draws) and an epistemic part, the mutual information between
the label and the parameters (the BALD score):

.. math::
    H[\bar p] = -\sum_c \bar p_c \log \bar p_c, \qquad
    \mathrm{MI} = H[\bar p] - \frac{1}{s} \sum_{k=1}^{s} H[p_k] \;\ge\; 0

Both are in nats. A deterministic model (``s = 1``) has MI = 0 everywhere. Cost: O(s n c).
Reference: Houlsby et al., 2011, "Bayesian Active Learning for Classification and Preference Learning";
Depeweg et al., 2018 (ICML), "Decomposition of Uncertainty in Bayesian Deep Learning".
"""

from __future__ import annotations

import torch

__all__ = ["aleatoric_entropy", "expected_entropy", "mutual_information", "predictive_entropy"]


def _entropy(probs: torch.Tensor) -> torch.Tensor:
    # 0 log 0 = 0: xlogy gives exactly that, without the clamp a log would need.
    return -torch.special.xlogy(probs, probs).sum(dim=-1)


def predictive_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy of the posterior-mean predictive, per sample.

    Args:
        probs: A `(s, n, c)` tensor of per-draw class probabilities.

    Returns:
        A `(n,)` tensor of entropies in nats, in ``[0, log c]``.

    Example:
        >>> probs = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
        >>> round(float(predictive_entropy(probs)[0]), 6)
        0.693147
    """
    return _entropy(probs.mean(dim=0))


def expected_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Mean entropy of the per-draw predictives (the aleatoric part of the predictive entropy), per sample.

    Args:
        probs: A `(s, n, c)` tensor of per-draw class probabilities.

    Returns:
        A `(n,)` tensor of entropies in nats, in ``[0, log c]``; ``predictive_entropy = expected_entropy +
        mutual_information``.

    Example:
        >>> probs = torch.tensor([[[0.5, 0.5]], [[1.0, 0.0]]])
        >>> round(float(expected_entropy(probs)[0]), 6)
        0.346574
    """
    return _entropy(probs).mean(dim=0)


aleatoric_entropy = expected_entropy
"""Alias of :func:`expected_entropy` under the name of the uncertainty it measures."""


def mutual_information(probs: torch.Tensor) -> torch.Tensor:
    """Mutual information between the label and the parameters (epistemic uncertainty), per sample.

    Args:
        probs: A `(s, n, c)` tensor of per-draw class probabilities.

    Returns:
        A `(n,)` tensor in nats, in ``[0, log c]`` (clamped at 0 against rounding).

    Example:
        >>> probs = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
        >>> round(float(mutual_information(probs)[0]), 6)
        0.693147
    """
    return (predictive_entropy(probs) - expected_entropy(probs)).clamp_min(0.0)
