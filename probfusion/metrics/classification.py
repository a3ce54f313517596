"""Classification metrics on predictive probabilities.

All functions take ``(n, c)`` probabilities (already averaged over posterior samples) and ``(n,)`` labels.
"""

from __future__ import annotations

import torch

__all__ = ["accuracy", "brier_score", "negative_log_likelihood"]

# Probabilities are clamped here before the log so a confident wrong answer costs a large but finite NLL.
_EPS = 1e-12


def accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of samples whose most probable class is the label.

    Example:
        >>> probs = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.7, 0.3]])
        >>> accuracy(probs, torch.tensor([0, 1, 1]))
        0.6666666865348816
    """
    return float((probs.argmax(dim=-1) == labels).float().mean())


def negative_log_likelihood(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log predictive probability of the label (nats).

    Example:
        >>> probs = torch.tensor([[0.5, 0.5], [0.25, 0.75]])
        >>> round(negative_log_likelihood(probs, torch.tensor([0, 1])), 6)
        0.490415
    """
    picked = probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    return float(-picked.clamp_min(_EPS).log().mean())


def brier_score(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over samples of the squared error summed over classes; in [0, 2].

    Example:
        >>> probs = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
        >>> brier_score(probs, torch.tensor([1, 0]))
        1.25
    """
    onehot = torch.nn.functional.one_hot(labels, probs.shape[-1]).to(probs.dtype)
    return float(((probs - onehot) ** 2).sum(dim=-1).mean())
