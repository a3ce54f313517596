"""Model kind ``tmc``: Trusted Multi-View Classification (Han et al., ICLR 2021; TPAMI 2022).

Per-modality Dirichlet opinions combined by the reduced Dempster-Shafer rule; trained with the per-view and
combined evidential losses (expected cross-entropy plus the annealed KL of the misleading evidence). See
:class:`~probfusion.fusion.evidential.EvidentialClassifier` and :mod:`probfusion.inference.evidential_loss`.
"""

from __future__ import annotations

from probfusion.models._evidential import evidential_spec
from probfusion.options import FusionKind

__all__ = ["SPEC"]

SPEC = evidential_spec(FusionKind.TMC, "Per-modality Dirichlet opinions fused by the reduced Dempster-Shafer rule.")
