r"""Effective rank of a Bayesian LMF head, read off its posterior draws.

**Read-outs.** For a draw of the head, component i adds :math:`a_i(z) \Theta_{:, i}` to the logits, with
:math:`a_i(z) = \prod_m w_m^{(i)} \cdot \tilde z_m`. Its share of output variance on reference latents is

.. math::
    v_i = \mathrm{Var}_n\big(a_i(z)\big) \, \big\| \Theta_{:, i} - \bar\Theta_i \mathbf 1 \big\|^2, \qquad
    \mathrm{share}_i = v_i / \textstyle\sum_j v_j

(Theta centred over classes, since a class-constant logit shift leaves the softmax unchanged). A component is
active in a draw when its share exceeds a threshold; the effective rank of a draw is the number of active
components, and over draws it has a posterior distribution (median and equal-tailed interval reported).

The re-expressions of the components live in :mod:`probfusion.fusion.reexpression`.

Reference: Zhao, Zhang, Cichocki, "Bayesian CP factorization ... with automatic rank determination", TPAMI 2015.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["summarise_rank", "variance_shares"]


def variance_shares(activations: Tensor, theta: Tensor) -> Tensor:
    """Each component's share of the logits' variance, per draw.

    Args:
        activations: A `(s, n, r)` tensor of component interactions a_i(z) on reference latents.
        theta: A `(s, c, r)` tensor of output weights.

    Returns:
        A `(s, r)` tensor of shares in [0, 1] summing to 1 per draw (all 0 if the head is constant).

    Example:
        >>> a = torch.tensor([[[1.0, 0.0], [-1.0, 0.0]]])
        >>> variance_shares(a, torch.tensor([[[1.0, 1.0], [-1.0, 1.0]]])).tolist()
        [[1.0, 0.0]]
    """
    centred = theta - theta.mean(dim=-2, keepdim=True)
    variance = activations.var(dim=-2, unbiased=False) * centred.square().sum(dim=-2)
    return variance / variance.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(variance.dtype).tiny)


def _quantile_index(cdf: Tensor, level: float) -> int:
    return int((cdf >= level - 1e-12).nonzero()[0, 0])


def summarise_rank(shares: Tensor, precisions: Tensor, *, threshold: float, interval: float = 0.9) -> dict[str, Any]:
    """Posterior summary of the effective rank from per-draw variance shares and precisions.

    Args:
        shares: A `(s, r)` tensor of variance shares per draw.
        precisions: A `(s, r)` tensor of component precisions per draw (fixed ones repeated).
        threshold: A component is active in a draw when its share exceeds this.
        interval: Probability mass of the equal-tailed interval of the effective rank.

    Returns:
        ``effective_rank`` (int, the posterior median), ``effective_rank_interval`` ([lo, hi], equal-tailed),
        ``effective_rank_distribution`` (probabilities of 0..r), ``interval_mass`` and ``components`` (one dict
        per component, in index order: ``index``, ``precision_mean``, ``activity_probability``,
        ``variance_share`` (posterior mean)).

    Example:
        >>> s = torch.tensor([[0.7, 0.3, 0.0], [0.6, 0.39, 0.01]])
        >>> out = summarise_rank(s, torch.ones(2, 3), threshold=0.05)
        >>> out["effective_rank"], out["effective_rank_interval"], out["effective_rank_distribution"]
        (2, [2, 2], [0.0, 0.0, 1.0, 0.0])
    """
    shares, precisions = shares.detach(), precisions.detach()
    rank = shares.shape[-1]
    active = shares > threshold
    counts = torch.bincount(active.sum(dim=-1), minlength=rank + 1).double()
    probs = counts / counts.sum()
    cdf = probs.cumsum(0)
    tail = (1.0 - interval) / 2.0
    components = [
        {
            "index": i,
            "precision_mean": float(precisions[:, i].mean()),
            "activity_probability": float(active[:, i].double().mean()),
            "variance_share": float(shares[:, i].double().mean()),
        }
        for i in range(rank)
    ]
    return {
        "effective_rank": _quantile_index(cdf, 0.5),
        "effective_rank_interval": [_quantile_index(cdf, tail), _quantile_index(cdf, 1.0 - tail)],
        "effective_rank_distribution": [float(p) for p in probs],
        "interval_mass": interval,
        "components": components,
    }
