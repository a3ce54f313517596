r"""Simulation-based calibration (SBC): are a sampler's posteriors right on average over the prior?

Draw :math:`\theta^\star \sim p(\theta)`, simulate :math:`y \sim p(y \mid \theta^\star)`, fit, and take the
rank of :math:`f(\theta^\star)` among L posterior draws :math:`f(\theta^{(1..L)})`: the number of draws below
it, 0..L. If the posterior is exact, the rank is uniform on {0, ..., L} for every function f (Talts et al.,
2018, Theorem 1), so a histogram of ranks over many simulations tests the inference, whatever the model. A
posterior that is too narrow piles ranks at both ends (a U), too wide in the middle (a hump), biased to one
side. Draws should be near independent (thin an MCMC chain) or the ranks are over-dispersed.

:func:`rank_statistic` computes the ranks; :func:`rank_uniformity` bins them into B equal groups of
(L + 1) / B ranks and applies Pearson's chi-square test of uniformity (B - 1 degrees of freedom; expected
count S / B per bin, which should be at least 5).

Reference: S. Talts, M. Betancourt, D. Simpson, A. Vehtari, A. Gelman, "Validating Bayesian inference
algorithms with simulation-based calibration", arXiv:1804.06788, 2018.

Example:
    >>> import torch
    >>> ranks = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    >>> out = rank_uniformity(ranks, num_draws=9, bins=5)
    >>> out["counts"], out["chi2"], round(out["p_value"], 3)
    ([2, 2, 2, 2, 2], 0.0, 1.0)
"""

from __future__ import annotations

from typing import Any

import torch
from scipy import stats
from torch import Tensor

from probfusion.errors import ConfigError

__all__ = ["rank_statistic", "rank_uniformity"]


def rank_statistic(true: Tensor, draws: Tensor) -> Tensor:
    """The SBC rank of each true quantity among its posterior draws.

    Args:
        true: A `(q,)` tensor of quantities f(theta*) of the simulating parameters.
        draws: An `(L, q)` tensor of the same quantities over L posterior draws.

    Returns:
        A `(q,)` integer tensor: the number of draws strictly below the true value, in 0..L.
    """
    return (draws < true.unsqueeze(0)).sum(0)


def rank_uniformity(ranks: Tensor, *, num_draws: int, bins: int) -> dict[str, Any]:
    """Pearson's chi-square test that SBC ranks are uniform on {0, ..., L}.

    Args:
        ranks: An `(S,)` tensor of ranks from S simulations, each in 0..L.
        num_draws: L, the number of posterior draws each rank was taken among.
        bins: B equal bins; B must divide L + 1.

    Returns:
        ``{"counts", "chi2", "dof", "p_value", "simulations"}``.

    Raises:
        ConfigError: If B does not divide L + 1, or a rank lies outside 0..L.
    """
    if bins < 2 or (num_draws + 1) % bins:
        raise ConfigError(f"SBC needs 2 or more bins dividing L + 1 = {num_draws + 1} ranks; got {bins} bins.")
    ranks = ranks.long().reshape(-1)
    if ranks.numel() == 0 or int(ranks.min()) < 0 or int(ranks.max()) > num_draws:
        raise ConfigError(f"SBC ranks must lie in 0..{num_draws}; got {ranks.tolist()[:10]}...")
    counts = torch.bincount(ranks // ((num_draws + 1) // bins), minlength=bins).double()
    expected = ranks.numel() / bins
    chi2 = float(((counts - expected).square() / expected).sum())
    return {
        "counts": [int(c) for c in counts],
        "chi2": chi2,
        "dof": bins - 1,
        "p_value": float(stats.chi2.sf(chi2, bins - 1)),
        "simulations": int(ranks.numel()),
    }
