"""The SBC rank machinery passes an exact posterior and catches miscalibrated ones (a conjugate Normal model)."""

import pytest
import torch

from probfusion.diagnostics.sbc import rank_statistic, rank_uniformity
from probfusion.errors import ConfigError

SIMS, DRAWS, BINS, N = 400, 19, 5, 5


def _ranks(scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    """mu ~ N(0, 1), y_i ~ N(mu, 1): the posterior is N(sum y / (n + 1), 1 / (n + 1)); ``scale``/``shift`` spoil it."""
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(SIMS, generator=g, dtype=torch.float64)
    y = mu.unsqueeze(-1) + torch.randn(SIMS, N, generator=g, dtype=torch.float64)
    sd = (1.0 / (N + 1)) ** 0.5
    loc = y.sum(-1) / (N + 1) + shift * sd
    draws = loc + scale * sd * torch.randn(DRAWS, SIMS, generator=g, dtype=torch.float64)
    return rank_statistic(mu, draws)


def test_exact_posterior_passes_and_miscalibrated_ones_fail():
    exact = rank_uniformity(_ranks(), num_draws=DRAWS, bins=BINS)
    assert sum(exact["counts"]) == SIMS
    assert exact["p_value"] > 0.05, exact
    # Too narrow (a U), too wide (a hump) and shifted by half a posterior sd: each must be rejected.
    for scale, shift in ((0.5, 0.0), (2.0, 0.0), (1.0, 0.5)):
        spoilt = rank_uniformity(_ranks(scale, shift), num_draws=DRAWS, bins=BINS)
        assert spoilt["p_value"] < 1e-4, (scale, shift, spoilt)


def test_rank_uniformity_refuses_unequal_bins_and_out_of_range_ranks():
    with pytest.raises(ConfigError, match="dividing"):
        rank_uniformity(torch.tensor([0, 1]), num_draws=9, bins=3)
    with pytest.raises(ConfigError, match=r"0\.\.9"):
        rank_uniformity(torch.tensor([0, 10]), num_draws=9, bins=5)
