"""Model kind ``rcml``: Reliable Conflictive Multi-View Learning (Xu et al., AAAI 2024).

Per-modality Dirichlet opinions combined by average evidence aggregation; trained with the evidential losses
of the views and the aggregate plus the conflictive degree between views. See
:class:`~probfusion.fusion.evidential.EvidentialClassifier` and :mod:`probfusion.inference.evidential_loss`.
"""

from __future__ import annotations

from probfusion.models._evidential import evidential_spec
from probfusion.options import FusionKind

__all__ = ["SPEC"]

SPEC = evidential_spec(FusionKind.RCML, "Per-modality Dirichlet opinions averaged, with a conflict-degree loss.")
