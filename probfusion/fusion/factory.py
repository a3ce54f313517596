"""Build the fusion layer that a :class:`~probfusion.config.FusionConfig` names."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from probfusion.config import FusionConfig
from probfusion.fusion.concat import ConcatFusion
from probfusion.fusion.heads import ClassifierHead
from probfusion.fusion.lmf import LowRankFusion
from probfusion.fusion.tfn import TensorFusion
from probfusion.options import FusionKind

__all__ = ["build_fusion", "build_head"]


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
        return LowRankFusion(
            input_dims=input_dims,
            rank=config.rank,
            output_dim=config.fused_dim,
            init=config.lmf_init,
            additive_path=config.additive_path,
        )
    if config.model is FusionKind.TFN:
        return TensorFusion(input_dims=input_dims, output_dim=config.fused_dim)
    return ConcatFusion(input_dims=input_dims, output_dim=config.fused_dim)


def build_head(config: FusionConfig, num_classes: int) -> ClassifierHead:
    """Return the classifier head of ``config.head`` on the fused width ``config.fused_dim``.

    Args:
        config: The fusion configuration.
        num_classes: Number of classes c.

    Returns:
        A module mapping a `(n, h)` fused tensor to `(n, c)` logits.

    Example:
        >>> from probfusion.config import FusionConfig
        >>> build_head(FusionConfig(fused_dim=4, head="linear"), 3).kind.value
        'linear'
    """
    # FusionConfig has no dropout of its own; the head's post-fusion dropout is off.
    return ClassifierHead(fused_dim=config.fused_dim, num_classes=num_classes, kind=config.head)
