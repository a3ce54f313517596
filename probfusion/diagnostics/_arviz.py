"""The one import of ArviZ: 0.23 warns once a day on import about its 1.x refactor, which tests treat as errors."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # The refactor notice is about a future release, not about anything this package does.
    warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor", category=FutureWarning)
    import arviz as az

__all__ = ["az"]
