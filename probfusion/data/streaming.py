"""Standardisation from a streaming pass: per-feature moments merged chunk by chunk, in float64.

For a folder source (:mod:`probfusion.data.folder`) the training split is never in memory at once; its mean
and standard deviation are accumulated over chunks with the pairwise update of Chan, Golub and LeVeque (1979):
each chunk's mean and sum of squared deviations are computed in two passes over the chunk and merged, which
keeps the result within about 1e-15 (relative) of the in-memory two-pass :meth:`Standardizer.fit`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from probfusion.data.folder import FolderSubset
from probfusion.data.transforms import Standardizer
from probfusion.errors import InputDataError

__all__ = ["RunningMoments", "check_standardised_range", "fit_standardizer"]

_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class RunningMoments:
    """Count, mean and sum of squared deviations per feature, updated one ``(b, d)`` chunk at a time.

    Chunks are merged relative to the first chunk's mean, so features whose mean dwarfs their spread keep the
    accuracy of a two-pass computation.

    Example:
        >>> import numpy as np
        >>> x = np.arange(12.0).reshape(6, 2)
        >>> moments = RunningMoments.of(np.array_split(x, 3))
        >>> moments.mean.tolist(), np.allclose(moments.std, x.std(axis=0))
        ([5.0, 6.0], True)
    """

    count: int = 0
    shift: np.ndarray = field(default_factory=lambda: np.zeros(0))
    shifted_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    m2: np.ndarray = field(default_factory=lambda: np.zeros(0))
    largest: float = 0.0

    @classmethod
    def of(cls, chunks: Iterable[np.ndarray]) -> RunningMoments:
        """The moments of the rows of all ``chunks`` together."""
        moments = cls()
        for chunk in chunks:
            moments.update(chunk)
        return moments

    def update(self, chunk: np.ndarray) -> None:
        """Merge the rows of a ``(b, d)`` chunk (computed in float64)."""
        x = np.asarray(chunk, dtype=np.float64)
        b = x.shape[0]
        if b == 0:
            return
        with np.errstate(over="ignore", invalid="ignore"):
            self.largest = max(self.largest, float(np.abs(x).max()))
            if self.count == 0:  # later chunks are merged relative to the first one's mean (no cancellation)
                self.shift = x.mean(axis=0)
            x = x - self.shift
            mean_b = x.mean(axis=0)
            m2_b = ((x - mean_b) ** 2).sum(axis=0)
            if self.count == 0:
                self.count, self.shifted_mean, self.m2 = b, mean_b, m2_b
                return
            total = self.count + b
            delta = mean_b - self.shifted_mean
            self.shifted_mean = self.shifted_mean + delta * (b / total)
            self.m2 = self.m2 + m2_b + delta**2 * (self.count * b / total)
            self.count = total

    @property
    def mean(self) -> np.ndarray:
        """Per-feature mean (float64)."""
        with np.errstate(over="ignore", invalid="ignore"):
            return self.shift + self.shifted_mean

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation (``ddof = 0``, as ``np.std``)."""
        with np.errstate(over="ignore", invalid="ignore"):
            return np.sqrt(self.m2 / max(self.count, 1))


def fit_standardizer(train: object) -> Standardizer:
    """The :class:`Standardizer` of a training split: in memory for a dataset, in chunks for a folder subset.

    Raises:
        InputDataError: If a modality's mean or standard deviation overflows even in float64.
    """
    if not isinstance(train, FolderSubset):
        return Standardizer.fit(train.views)  # type: ignore[attr-defined]
    moments = {}
    for m in train.modality_names:
        running = RunningMoments.of(train.chunks(m))
        moments[m] = (running.mean, running.std, running.largest)
    return Standardizer.from_moments(moments)


def check_standardised_range(part: FolderSubset, standardizer: Standardizer) -> None:
    """Refuse a folder whose standardised features leave float32 (what ``Standardizer.transform`` refuses).

    Standardisation is monotone in each feature, so the extremes over all rows of the folder come from each
    feature's minimum and maximum, noted when the folder was opened: no pass over the rows.

    Raises:
        InputDataError: If a standardised value of any row would exceed the float32 range.
    """
    for m in part.modality_names:
        low, high = part.source.ranges[m]
        mean, std = standardizer.mean[m].astype(np.float64), standardizer.std[m].astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            extremes = np.abs(np.stack([low, high]).astype(np.float64) - mean) / std
        if not np.isfinite(extremes).all() or float(extremes.max(initial=0.0)) > _FLOAT32_MAX:
            raise InputDataError(
                f"Modality {m!r} in dataset {part.name!r} standardises to values beyond the float32 range (features "
                "far outside the training range); rescale the features or drop those rows."
            )
