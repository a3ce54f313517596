"""Model kind ``lmf``: Low-rank multimodal fusion (Liu et al., 2018) with point-estimate factors.

One stage: the deterministic classifier trained with cross-entropy plus the jWAE loss.
"""

from __future__ import annotations

from probfusion.models._deterministic import build_classifier
from probfusion.models.registry import ModelSpec, seeded

__all__ = ["SPEC"]

SPEC = ModelSpec(
    name="lmf",
    summary="Low-rank multimodal fusion (Liu et al., 2018) with point-estimate factors.",
    build=build_classifier,
    load=seeded(build_classifier),
)
