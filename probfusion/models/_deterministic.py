"""The deterministic classifier shared by the ``lmf``, ``tfn`` and ``concat`` kinds (and the first stages)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from probfusion.config import RunConfig
from probfusion.fusion.classifier import MultimodalClassifier
from probfusion.options import FusionKind, RankPrior

__all__ = ["build_classifier"]


def build_classifier(
    config: RunConfig, dims: Mapping[str, int], num_classes: int, *, fusion: FusionKind | None = None
) -> MultimodalClassifier:
    """The jWAE encoders, the fusion layer of ``fusion`` (default: the config's) and the head, as point estimates.

    Args:
        config: The run's configuration.
        dims: ``{m: d_m}`` in modality order.
        num_classes: Number of classes c.
        fusion: The fusion layer to build instead of ``config.fusion.model`` (the stage-one LMF of ``gp-mkl``).

    Returns:
        The untrained classifier.
    """
    stage = dataclasses.replace(config.fusion, model=fusion or config.fusion.model, rank_prior=RankPrior.NONE)
    return MultimodalClassifier(input_dims=dims, num_classes=num_classes, jwae=config.jwae, fusion=stage)
