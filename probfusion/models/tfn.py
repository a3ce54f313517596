"""Model kind ``tfn``: Tensor fusion (Zadeh et al., 2017): a dense weight on the full outer-product tensor.

One stage: the deterministic classifier trained with cross-entropy plus the jWAE loss.
"""

from __future__ import annotations

from probfusion.models._deterministic import build_classifier
from probfusion.models.registry import ModelSpec, seeded

__all__ = ["SPEC"]

SPEC = ModelSpec(
    name="tfn",
    summary="Tensor fusion (Zadeh et al., 2017): a dense weight on the full outer-product tensor.",
    build=build_classifier,
    load=seeded(build_classifier),
)
