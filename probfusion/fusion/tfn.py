"""Tensor fusion (TFN): a dense linear map on the flattened outer product of the augmented latents."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from probfusion.errors import ConfigError
from probfusion.fusion._common import append_one, check_count, check_dims

__all__ = ["MAX_TFN_WEIGHTS", "TensorFusion"]

MAX_TFN_WEIGHTS = 50_000_000
"""Largest dense TFN weight (h prod_m (d_m + 1) entries, 200 MB in float32) built without complaint."""


class TensorFusion(nn.Module):
    r"""Tensor fusion network layer: every multiplicative interaction of the modalities, with a dense weight.

    .. math::
        f(z_1, \dots, z_M) = W \, \mathrm{vec}(\tilde z_1 \otimes \cdots \otimes \tilde z_M),
        \qquad \tilde z_m = [z_m; 1], \quad W \in \mathbb{R}^{h \times \prod_m (d_m + 1)}

    The constant 1 in each :math:`\tilde z_m` (its last coordinate) carries the unimodal and bias terms, so the
    linear map has no separate bias and :meth:`weight_tensor` describes the layer completely.

    Cost: O(h prod_m (d_m + 1)) parameters and multiply-adds per sample, exponential in M; see
    :class:`~probfusion.fusion.lmf.LowRankFusion` for the CP-rank-r version at O(r h sum_m (d_m + 1)).

    Reference: A. Zadeh, M. Chen, S. Poria, E. Cambria, L.-P. Morency, "Tensor Fusion Network for Multimodal
    Sentiment Analysis", EMNLP 2017.

    Args:
        input_dims: Latent widths d_m, one per modality, in order.
        output_dim: Fused width h.

    Raises:
        ConfigError: If the dense weight would exceed :data:`MAX_TFN_WEIGHTS` entries.

    Example:
        >>> import torch
        >>> tfn = TensorFusion(input_dims=[3, 4], output_dim=5)
        >>> tfn([torch.randn(6, 3), torch.randn(6, 4)]).shape
        torch.Size([6, 5])
        >>> tfn.weight_tensor().shape
        torch.Size([5, 4, 5])
    """

    def __init__(self, *, input_dims: Sequence[int], output_dim: int) -> None:
        super().__init__()
        self.input_dims = check_dims("TensorFusion", input_dims, output_dim)
        self.output_dim = output_dim
        num_features = math.prod(d + 1 for d in self.input_dims)
        if num_features * output_dim > MAX_TFN_WEIGHTS:
            raise ConfigError(
                f"TensorFusion over latent widths {self.input_dims} with h={output_dim} needs "
                f"{num_features * output_dim:,} weights (h * prod(d_m + 1)); the limit is {MAX_TFN_WEIGHTS:,}. "
                "Use model 'lmf', fewer modalities or a smaller latent_dim."
            )
        self.linear = nn.Linear(num_features, output_dim, bias=False)
        # Unit-variance outer-product features (standardised latents and the constant 1) times
        # N(0, 1 / fan_in) weights give outputs of variance about 1, the scale LowRankFusion starts at.
        nn.init.normal_(self.linear.weight, mean=0.0, std=1.0 / math.sqrt(num_features))

    def outer_features(self, latents: Sequence[Tensor]) -> Tensor:
        """The flattened outer product of the augmented latents, in row-major order of the modalities.

        Args:
            latents: M tensors of shape `(n, d_m)`, one per modality, in order.

        Returns:
            A `(n, prod_m (d_m + 1))` tensor.
        """
        check_count("TensorFusion", latents, len(self.input_dims))
        features = append_one(latents[0])
        for z in latents[1:]:
            z1 = append_one(z)
            features = (features.unsqueeze(-1) * z1.unsqueeze(1)).flatten(start_dim=1)
        return features

    def forward(self, latents: Sequence[Tensor]) -> Tensor:
        """Fuse the latents.

        Args:
            latents: M tensors of shape `(n, d_m)`, one per modality, in order.

        Returns:
            A `(n, h)` tensor.
        """
        return self.linear(self.outer_features(latents))

    def weight_tensor(self) -> Tensor:
        """The dense weight as a tensor over the modality axes (a view: writing to it changes the layer).

        Returns:
            A `(h, d_1 + 1, ..., d_M + 1)` view of the linear weight.
        """
        return self.linear.weight.view(self.output_dim, *(d + 1 for d in self.input_dims))
