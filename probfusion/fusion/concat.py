"""Concatenation fusion: additive (early) fusion, the simplest baseline and the unimodal one."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from probfusion.fusion._common import check_count, check_dims

__all__ = ["ConcatFusion"]


class ConcatFusion(nn.Module):
    r"""Concatenate the latents and apply one linear layer: no multiplicative interactions.

    .. math::
        f(z_1, \dots, z_M) = W [z_1; \dots; z_M] + b = \sum_m W_m z_m + b

    Cost: O(h sum_m d_m) parameters and multiply-adds per sample. Works for M = 1 (unimodal baselines).

    Reference: the early-fusion baseline of Zadeh et al., 2017 (EMNLP) and Liu et al., 2018 (ACL).

    Args:
        input_dims: Latent widths d_m, one per modality, in order.
        output_dim: Fused width h.

    Example:
        >>> import torch
        >>> concat = ConcatFusion(input_dims=[3], output_dim=5)
        >>> concat([torch.randn(6, 3)]).shape
        torch.Size([6, 5])
    """

    def __init__(self, *, input_dims: Sequence[int], output_dim: int) -> None:
        super().__init__()
        self.input_dims = check_dims("ConcatFusion", input_dims, output_dim)
        self.output_dim = output_dim
        self.linear = nn.Linear(sum(self.input_dims), output_dim)

    def forward(self, latents: Sequence[Tensor]) -> Tensor:
        """Fuse the latents.

        Args:
            latents: M tensors of shape `(n, d_m)`, one per modality, in order.

        Returns:
            A `(n, h)` tensor.
        """
        check_count("ConcatFusion", latents, len(self.input_dims))
        return self.linear(torch.cat(list(latents), dim=-1))
