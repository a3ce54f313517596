"""Seed-form LMF as a point estimate: the deterministic twin of the Bayesian head, trained in its first stage."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from probfusion.errors import ConfigError
from probfusion.fusion._common import check_count, check_dims
from probfusion.fusion.bayesian_lmf import component_activations

__all__ = ["SeedFormFusion"]


class SeedFormFusion(nn.Module):
    r"""The r scalar interactions of seed-form LMF, ``a_i = prod_m w_m^(i) . [z_m; 1]``, as an `(n, r)` output.

    Followed by a linear head (``Theta a + b``) it is exactly the function of
    :class:`~probfusion.fusion.bayesian_lmf.BayesianLowRankFusion` at one parameter set, so the Bayesian kind
    trains its encoders against the head it will put a posterior on, and starts that posterior from these
    weights (:func:`~probfusion.inference.svi.fit_bayesian_head`). Liu et al.'s h-unit form with a ReLU head
    (:class:`~probfusion.fusion.lmf.LowRankFusion`) has no seed-form counterpart to start from.

    Initialisation (the additive start of the deterministic LMF): each factor's constant coordinate is 1
    (modality 0's with a random sign), the others N(0, 1 / (M d_m)), so every component starts as
    ``+-prod_m (1 + u_m . z_m)``, near a sum of unimodal terms.

    Cost: O(r sum_m (d_m + 1)) parameters and multiply-adds per sample.

    Args:
        input_dims: Latent widths d_m, one per modality, in order (M >= 1).
        rank: Number r of components (the fused width).

    Example:
        >>> import torch
        >>> SeedFormFusion(input_dims=[3, 4], rank=5)([torch.randn(6, 3), torch.randn(6, 4)]).shape
        torch.Size([6, 5])
    """

    def __init__(self, *, input_dims: Sequence[int], rank: int) -> None:
        super().__init__()
        if rank < 1:
            raise ConfigError(f"SeedFormFusion rank must be a positive integer; got {rank}.")
        self.input_dims = check_dims("SeedFormFusion", input_dims, rank)
        self.rank = rank
        self.output_dim = rank
        self.factors = nn.ParameterList(nn.Parameter(torch.empty(rank, d + 1)) for d in self.input_dims)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The additive start described above."""
        with torch.no_grad():
            for k, (factor, d_m) in enumerate(zip(self.factors, self.input_dims, strict=True)):
                factor.normal_(0.0, 1.0 / math.sqrt(len(self.input_dims) * d_m))
                factor[:, -1] = 1.0
                if k == 0:
                    factor[:, -1] = torch.randint(0, 2, (self.rank,)).mul(2).sub(1).to(factor.dtype)

    def sites(self) -> dict[str, Tensor]:
        """The factors under the Bayesian head's site names, ``factor_k`` `(r, d_k + 1)`."""
        return {f"factor_{k}": factor for k, factor in enumerate(self.factors)}

    def forward(self, latents: Sequence[Tensor]) -> Tensor:
        """The components.

        Args:
            latents: M tensors of shape `(n, d_m)`, one per modality, in order.

        Returns:
            An `(n, r)` tensor.
        """
        check_count("SeedFormFusion", latents, len(self.factors))
        return component_activations(latents, {k: v.unsqueeze(0) for k, v in self.sites().items()})[0]
