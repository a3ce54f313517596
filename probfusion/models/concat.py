"""Model kind ``concat``: Concatenation of the latents, then the head (early fusion; late fusion with --head linear).

One stage: the deterministic classifier trained with cross-entropy plus the jWAE loss.
"""

from __future__ import annotations

from probfusion.models._deterministic import build_classifier
from probfusion.models.registry import ModelSpec, seeded

__all__ = ["SPEC"]

SPEC = ModelSpec(
    name="concat",
    summary="Concatenation of the latents, then the head (early fusion; late fusion with --head linear).",
    build=build_classifier,
    load=seeded(build_classifier),
)
