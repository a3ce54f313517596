"""The dataset type: named modalities paired row by row, with class labels."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from probfusion.data.validation import check_labels, check_views
from probfusion.errors import InputDataError

__all__ = ["MultimodalDataset"]


@dataclass(frozen=True, eq=False)
class MultimodalDataset:
    """Named modalities paired row by row, with class labels and optional per-row metadata.

    Construction validates everything (see :mod:`probfusion.data.validation`), so a dataset that exists is
    usable: finite ``float32`` features, equal row counts, labels with at least two classes. Labels may be any
    distinct integers or strings; they are stored as indices ``0..c-1`` into ``classes``, which keeps the original
    values (``{3, 7, 42}`` gives a three-class dataset with ``classes == (3, 7, 42)``).

    Attributes:
        name: Dataset name (registry name or file path).
        views: ``{m: (n, d_m) float32 array}``, in modality order.
        labels: ``(n,)`` int64 class indices in ``0..c-1`` (given as any class values; see ``classes``).
        num_classes: Number of classes c (may exceed the classes present in a subset).
        classes: ``(c,)`` the original class values (ints or strings) of indices ``0..c-1``. Leave it ``None``
            when constructing: it is derived from the labels. When given (as :meth:`subset` does), ``labels`` must
            already be indices into it, and a subset may hold a single class.
        groups: ``(n,)`` int64 group ids; rows of one group (exact duplicates) stay on one side of a split.
        speakers: ``(n,)`` speaker names, for held-out-speaker splits.
        split: ``(n,)`` int8 predefined split (0 train, 1 validation, 2 test).
        default_held_out_speaker: The speaker held out by default in a speaker split.
        ground_truth: Extra arrays describing how the data was generated (synthetic data only).
        description: One line on what the data is.
        licence: Licence and credit of the source data.
    """

    name: str
    views: Mapping[str, np.ndarray]
    labels: np.ndarray
    num_classes: int | None = None
    groups: np.ndarray | None = None
    speakers: np.ndarray | None = None
    split: np.ndarray | None = None
    default_held_out_speaker: str | None = None
    ground_truth: Mapping[str, np.ndarray] = field(default_factory=dict)
    description: str = ""
    licence: str = ""
    classes: tuple[int | str, ...] | None = None

    def __post_init__(self) -> None:
        views = check_views(self.views, source=f"dataset {self.name!r}")
        n = next(iter(views.values())).shape[0]
        if self.classes is None:
            labels, classes = check_labels(
                self.labels, n, source=f"dataset {self.name!r}", num_classes=self.num_classes
            )
        else:  # labels already encoded (a subset or a selection of a dataset)
            classes = tuple(self.classes)
            labels = np.asarray(self.labels)
            if (
                labels.shape != (n,)
                or labels.dtype.kind not in "iu"
                or labels.min() < 0
                or labels.max() >= len(classes)
            ):
                raise InputDataError(
                    f"Dataset {self.name!r} has labels that are not indices into its {len(classes)} classes."
                )
            labels = labels.astype(np.int64)
        if self.num_classes is not None and int(self.num_classes) != len(classes):
            raise InputDataError(
                f"Dataset {self.name!r} has {len(classes)} classes but num_classes={self.num_classes}; "
                "give labels 0..num_classes-1 or leave num_classes unset."
            )
        object.__setattr__(self, "views", views)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "num_classes", len(classes))
        for key in ("groups", "speakers", "split"):
            value = getattr(self, key)
            if value is not None and len(value) != n:
                raise InputDataError(
                    f"Dataset {self.name!r} has {len(value)} {key} entries but {n} samples; give one per row."
                )
        if self.split is not None:
            split = np.asarray(self.split)
            if not np.isin(split, (0, 1, 2)).all():
                raise InputDataError(
                    f"Dataset {self.name!r} has split values {sorted(set(np.unique(split).tolist()) - {0, 1, 2})}; "
                    "expected 0 (train), 1 (validation) or 2 (test)."
                )
            object.__setattr__(self, "split", split.astype(np.int8))

    @property
    def modality_names(self) -> tuple[str, ...]:
        """The modality names, in order."""
        return tuple(self.views)

    @property
    def num_samples(self) -> int:
        """The number of paired samples n."""
        return int(self.labels.shape[0])

    @property
    def dims(self) -> dict[str, int]:
        """``{m: d_m}``, the feature width of each modality."""
        return {name: int(array.shape[1]) for name, array in self.views.items()}

    def subset(self, indices: np.ndarray) -> MultimodalDataset:
        """Return the rows ``indices`` (a ``(k,)`` int array) as a new dataset with the same classes."""

        def take(value: np.ndarray | None) -> np.ndarray | None:
            return None if value is None else np.asarray(value)[indices]

        return dataclasses.replace(
            self,
            views={name: array[indices] for name, array in self.views.items()},
            labels=self.labels[indices],
            groups=take(self.groups),
            speakers=take(self.speakers),
            split=take(self.split),
        )

    def select(self, modalities: Sequence[str]) -> MultimodalDataset:
        """Return the dataset restricted to ``modalities``, in that order.

        Raises:
            InputDataError: If a name is not a modality of this dataset.
        """
        missing = [m for m in modalities if m not in self.views]
        if missing:
            raise InputDataError(
                f"Dataset {self.name!r} has no modality {missing[0]!r}; its modalities are {list(self.modality_names)}."
            )
        return dataclasses.replace(self, views={name: self.views[name] for name in modalities})
