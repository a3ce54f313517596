"""Per-modality standardisation, fitted on the training split only.

The fitted standard deviations are also the unit of attack budgets: an epsilon of 0.1 moves each feature by
at most a tenth of its training standard deviation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["Standardizer"]

# Features whose training spread is below this (constant pixels, for example) are centred but not scaled,
# so they cannot blow up on test data.
_MIN_STD = 1e-6


@dataclass(frozen=True, eq=False)
class Standardizer:
    """Per-feature mean and standard deviation of each modality.

    Attributes:
        mean: ``{m: (d_m,) float32}`` training means.
        std: ``{m: (d_m,) float32}`` training standard deviations (1 where a feature is constant).

    Example:
        >>> import numpy as np
        >>> s = Standardizer.fit({"a": np.array([[0.0, 1.0], [2.0, 1.0]])})
        >>> s.transform({"a": np.array([[2.0, 1.0]])})["a"].tolist()
        [[1.0, 0.0]]
    """

    mean: Mapping[str, np.ndarray]
    std: Mapping[str, np.ndarray]

    @classmethod
    def fit(cls, views: Mapping[str, np.ndarray]) -> Standardizer:
        """Fit on ``{m: (n, d_m)}`` training features."""
        mean = {m: x.mean(axis=0).astype(np.float32) for m, x in views.items()}
        std = {}
        for m, x in views.items():
            s = x.std(axis=0).astype(np.float32)
            std[m] = np.where(s < _MIN_STD, np.float32(1.0), s)
        return cls(mean=mean, std=std)

    def transform(self, views: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return ``{m: (n, d_m) float32}`` standardised with the training statistics."""
        return {m: ((x - self.mean[m]) / self.std[m]).astype(np.float32) for m, x in views.items()}

    def state(self) -> dict[str, np.ndarray]:
        """Flat arrays for a safetensors file: ``standardizer.mean.<m>`` and ``standardizer.std.<m>``."""
        out = {f"standardizer.mean.{m}": v for m, v in self.mean.items()}
        out.update({f"standardizer.std.{m}": v for m, v in self.std.items()})
        return out

    @classmethod
    def from_state(cls, state: Mapping[str, np.ndarray], modalities: tuple[str, ...]) -> Standardizer:
        """Inverse of :meth:`state` for the given modality order."""
        return cls(
            mean={m: np.asarray(state[f"standardizer.mean.{m}"]) for m in modalities},
            std={m: np.asarray(state[f"standardizer.std.{m}"]) for m in modalities},
        )
