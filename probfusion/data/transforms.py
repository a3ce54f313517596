"""Per-modality standardisation, fitted on the training split only.

The fitted standard deviations are also the unit of attack budgets: an epsilon of 0.1 moves each feature by
at most a tenth of its training standard deviation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from probfusion.errors import InputDataError

__all__ = ["Standardizer"]

# Features whose training spread is below this (constant pixels, for example) are centred but not scaled,
# so they cannot blow up on test data.
_MIN_STD = 1e-6
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _overflows(mean: np.ndarray, std: np.ndarray) -> bool:
    return not (np.isfinite(mean).all() and np.isfinite(std).all()) or float(np.abs(mean).max()) > _FLOAT32_MAX


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
        """Fit on ``{m: (n, d_m)}`` training features.

        The statistics are computed in float64: in float32 the square inside the standard deviation overflows
        for features above about 1e19, which would give an infinite std and a modality of zeros.

        Raises:
            InputDataError: If a modality's mean or standard deviation is not finite even in float64.
        """
        moments = {}
        for m, x in views.items():
            x64 = np.asarray(x, dtype=np.float64)
            with np.errstate(over="ignore", invalid="ignore"):
                mu, s = x64.mean(axis=0), x64.std(axis=0)
            moments[m] = (mu, s, float(np.abs(x64).max()) if _overflows(mu, s) else 0.0)  # only for the message
        return cls.from_moments(moments)

    @classmethod
    def from_moments(cls, moments: Mapping[str, tuple[np.ndarray, np.ndarray, float]]) -> Standardizer:
        """Build from ``{m: ((d_m,) float64 mean, (d_m,) float64 std, largest |x|)}`` (a streaming pass's result).

        Raises:
            InputDataError: If a modality's mean or standard deviation is not finite even in float64.
        """
        mean, std = {}, {}
        for m, (mu, s, largest) in moments.items():
            if _overflows(mu, s):
                raise InputDataError(
                    f"Modality {m!r} has features whose mean or standard deviation overflows (values up to "
                    f"{largest:.3g}); rescale those features (divide or take a log) before fitting."
                )
            mean[m] = mu.astype(np.float32)
            std[m] = np.where(s < _MIN_STD, 1.0, s).astype(np.float32)
        return cls(mean=mean, std=std)

    def transform(self, views: Mapping[str, np.ndarray], *, source: str = "the data") -> dict[str, np.ndarray]:
        """Return ``{m: (n, d_m) float32}`` standardised with the training statistics (computed in float64).

        Raises:
            InputDataError: If a standardised value leaves the float32 range the model computes in (features far
                outside the training range of a feature with a tiny spread).
        """
        out = {}
        for m, x in views.items():
            z = self.standardise(m, x)
            if not np.isfinite(z).all() or np.abs(z).max(initial=0.0) > _FLOAT32_MAX:
                raise InputDataError(
                    f"Modality {m!r} in {source} standardises to values beyond the float32 range (features far "
                    "outside the training range); rescale the features or drop those rows."
                )
            out[m] = z.astype(np.float32)
        return out

    def standardise(self, m: str, x: np.ndarray) -> np.ndarray:
        """``(x - mean_m) / std_m`` in float64, unchecked.

        The arithmetic of :meth:`transform` (which also checks the float32 range), shared with the streamed path,
        which checks the range once, up front.
        """
        return (np.asarray(x, dtype=np.float64) - self.mean[m].astype(np.float64)) / self.std[m].astype(np.float64)

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
