"""Build the fusion layer that a :class:`~probfusion.config.FusionConfig` names."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from probfusion.config import FusionConfig
from probfusion.fusion.concat import ConcatFusion
from probfusion.fusion.lmf import LowRankFusion
from probfusion.fusion.tfn import TensorFusion
from probfusion.options import FusionKind

__all__ = ["build_fusion"]


def build_fusion(config: FusionConfig, input_dims: Sequence[int]) -> nn.Module:
    """Return the fusion layer of ``config.model`` with output width ``config.fused_dim``.

    Args:
        config: The fusion configuration (``rank`` is used by LMF only).
        input_dims: Latent widths d_m, one per modality, in order.

    Returns:
        A module mapping M `(n, d_m)` latents to a `(n, h)` fused tensor.

    Example:
        >>> from probfusion.config import FusionConfig
        >>> type(build_fusion(FusionConfig(model="tfn", fused_dim=4), [2, 2])).__name__
        'TensorFusion'
    """
    if config.model is FusionKind.LMF:
        return LowRankFusion(input_dims=input_dims, rank=config.rank, output_dim=config.fused_dim)
    if config.model is FusionKind.TFN:
        return TensorFusion(input_dims=input_dims, output_dim=config.fused_dim)
    return ConcatFusion(input_dims=input_dims, output_dim=config.fused_dim)
