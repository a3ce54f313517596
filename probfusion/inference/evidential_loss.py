r"""The evidential losses of TMC (Han et al., 2021) and RCML (Xu et al., 2024).

For Dirichlet parameters :math:`\alpha` (strength :math:`S`) and a one-hot label :math:`y`, the expected
cross-entropy under the Dirichlet (the "digamma" form) is

.. math::
    \mathcal{L}_{ace}(\alpha) = \mathbb{E}_{p \sim \mathrm{Dir}(\alpha)}\Big[-\sum_k y_k \log p_k\Big]
        = \sum_k y_k \big(\psi(S) - \psi(\alpha_k)\big),

and the misleading evidence (on the wrong classes) is pulled to the uniform Dirichlet by
:math:`\mathrm{KL}[\mathrm{Dir}(\tilde\alpha) \,\|\, \mathrm{Dir}(\mathbf 1)]` with
:math:`\tilde\alpha = y + (1 - y) \odot \alpha`, weighted by the annealing coefficient
:math:`\lambda_t = \min(1, t / T)` at epoch t (TMC: T = 10). The per-opinion loss is
:math:`\mathcal{L}_{acc} = \mathcal{L}_{ace} + \lambda_t \mathrm{KL}`.

* TMC: :math:`\mathcal{L} = \mathcal{L}_{acc}(\alpha) + \sum_m \mathcal{L}_{acc}(\alpha_m)`, the combined opinion
  plus every view's.
* RCML: :math:`\mathcal{L} = \frac{1}{M + 1}\big(\mathcal{L}_{acc}(\alpha) + \sum_m \mathcal{L}_{acc}(\alpha_m)\big)
  + \gamma \mathcal{L}_{con}`, with :math:`\mathcal{L}_{con} = \frac{1}{M - 1} \sum_p \sum_{q \ne p}
  c(\omega^p, \omega^q)` the conflictive degree between views (:func:`~probfusion.fusion.opinions.conflict_degree`).

All losses are means over the rows of a batch. Cost: O(M^2 n c) (the pairs of views), O(M n c) for TMC.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from probfusion.fusion.opinions import conflict_degree

__all__ = [
    "annealing_weight",
    "conflict_loss",
    "evidential_loss",
    "expected_cross_entropy",
    "kl_to_uniform",
    "rcml_loss",
    "tmc_loss",
]


def expected_cross_entropy(alpha: Tensor, labels: Tensor) -> Tensor:
    """``E_{p ~ Dir(alpha)}[-log p_y] = psi(S) - psi(alpha_y)`` per row.

    Args:
        alpha: A `(n, c)` tensor of Dirichlet parameters.
        labels: A `(n,)` tensor of class indices.

    Returns:
        A `(n,)` tensor.

    Example:
        >>> round(expected_cross_entropy(torch.tensor([[1.0, 1.0]]), torch.tensor([0])).item(), 4)
        1.0
    """
    strength = alpha.sum(-1)
    return torch.digamma(strength) - torch.digamma(alpha.gather(-1, labels.unsqueeze(-1)).squeeze(-1))


def kl_to_uniform(alpha: Tensor) -> Tensor:
    r"""``KL[Dir(alpha) || Dir(1)]`` per row.

    .. math::
        \log\Gamma(S) - \log\Gamma(c) - \sum_k \log\Gamma(\alpha_k) + \sum_k (\alpha_k - 1)(\psi(\alpha_k) - \psi(S))

    Args:
        alpha: A `(n, c)` tensor of Dirichlet parameters.

    Returns:
        A `(n,)` tensor, zero where ``alpha`` is all ones.
    """
    c = alpha.shape[-1]
    strength = alpha.sum(-1, keepdim=True)
    return (
        torch.lgamma(strength.squeeze(-1))
        - math.lgamma(c)
        - torch.lgamma(alpha).sum(-1)
        + ((alpha - 1.0) * (torch.digamma(alpha) - torch.digamma(strength))).sum(-1)
    )


def annealing_weight(epoch: int, annealing_epochs: int) -> float:
    """``min(1, t / T)`` at 1-based epoch ``t``."""
    return min(1.0, epoch / annealing_epochs)


def evidential_loss(alpha: Tensor, labels: Tensor, *, kl_weight: float) -> Tensor:
    """Mean over rows of the expected cross-entropy plus ``kl_weight`` times the KL of the misleading evidence.

    Args:
        alpha: A `(n, c)` tensor of Dirichlet parameters.
        labels: A `(n,)` tensor of class indices.
        kl_weight: The annealing coefficient lambda_t.

    Returns:
        A scalar.
    """
    onehot = torch.nn.functional.one_hot(labels, alpha.shape[-1]).to(alpha.dtype)
    misleading = onehot + (1.0 - onehot) * alpha
    return (expected_cross_entropy(alpha, labels) + kl_weight * kl_to_uniform(misleading)).mean()


def tmc_loss(view_alpha: Tensor, alpha: Tensor, labels: Tensor, *, kl_weight: float) -> Tensor:
    """TMC's loss: the combined opinion's evidential loss plus every view's.

    Args:
        view_alpha: A `(M, n, c)` tensor of per-view Dirichlet parameters.
        alpha: A `(n, c)` tensor of the combined opinion's parameters.
        labels: A `(n,)` tensor of class indices.
        kl_weight: The annealing coefficient lambda_t.

    Returns:
        A scalar.
    """
    views = evidential_loss(view_alpha.flatten(0, 1), labels.repeat(view_alpha.shape[0]), kl_weight=kl_weight)
    return evidential_loss(alpha, labels, kl_weight=kl_weight) + view_alpha.shape[0] * views


def conflict_loss(view_alpha: Tensor) -> Tensor:
    """RCML's ``L_con``: ``1 / (M - 1)`` times the sum over ordered pairs of views of their conflictive degree.

    Args:
        view_alpha: A `(M, n, c)` tensor of per-view Dirichlet parameters, M >= 2.

    Returns:
        A scalar (mean over rows).
    """
    m = view_alpha.shape[0]
    pairs = conflict_degree(view_alpha.unsqueeze(0), view_alpha.unsqueeze(1))  # (M, M, n); the diagonal is 0
    return pairs.sum(dim=(0, 1)).mean() / max(m - 1, 1)


def rcml_loss(view_alpha: Tensor, alpha: Tensor, labels: Tensor, *, kl_weight: float, conflict_weight: float) -> Tensor:
    """RCML's loss: the mean evidential loss over the M views and the aggregate, plus the conflict term.

    Args:
        view_alpha: A `(M, n, c)` tensor of per-view Dirichlet parameters.
        alpha: A `(n, c)` tensor of the aggregated opinion's parameters.
        labels: A `(n,)` tensor of class indices.
        kl_weight: The annealing coefficient lambda_t.
        conflict_weight: The weight gamma of the conflictive-degree term.

    Returns:
        A scalar.
    """
    m = view_alpha.shape[0]
    views = evidential_loss(view_alpha.flatten(0, 1), labels.repeat(m), kl_weight=kl_weight)
    accuracy = (evidential_loss(alpha, labels, kl_weight=kl_weight) + m * views) / (m + 1)
    return accuracy + conflict_weight * conflict_loss(view_alpha)
