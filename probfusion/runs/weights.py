"""The classifier weights file (``weights.safetensors``): its metadata and training standardisation, validated.

Everything read from disk is checked before a model is built from it: integers are integers (not bools) within
range, the standardisation has one finite mean and one finite, positive std per feature.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from probfusion.data.transforms import Standardizer
from probfusion.data.validation import MAX_CLASSES
from probfusion.errors import CheckpointError

__all__ = ["metadata_count", "stored_standardizer", "weights_header"]


def metadata_count(value: object, field: str, source: Path, *, low: int = 0, high: int = 2**62) -> int:
    """An integer (not a bool) from a weights file's metadata, within ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CheckpointError(
            f"{source}: metadata field {field!r} must be an integer from {low} to {high}; got {value!r}. "
            "The file is corrupt or was not written by probfusion; re-run fit with --overwrite."
        )
    return value


def weights_header(meta: dict[str, Any], source: Path) -> tuple[dict[str, int], int, tuple[int | str, ...]]:
    """Input widths, number of classes and class labels from a weights file's metadata, validated."""
    raw_dims = meta.get("input_dims")
    if not isinstance(raw_dims, dict) or not raw_dims or not all(isinstance(k, str) for k in raw_dims):
        raise CheckpointError(f"{source} lacks its input dims; it was not written by probfusion. Re-run fit.")
    dims = {name: metadata_count(width, f"input_dims.{name}", source, low=1) for name, width in raw_dims.items()}
    num_classes = metadata_count(meta.get("num_classes"), "num_classes", source, low=2, high=MAX_CLASSES)
    labels = meta.get("class_labels", list(range(num_classes)))  # runs written before labels were kept
    if (
        not isinstance(labels, list)
        or len(labels) != num_classes
        or any(isinstance(v, bool) or not isinstance(v, int | str) for v in labels)
        or len(set(labels)) != len(labels)
    ):
        raise CheckpointError(
            f"{source}: metadata field 'class_labels' must be {num_classes} distinct ints or strings (one per "
            f"output); got {str(labels)[:80]}. Re-run fit with --overwrite."
        )
    return dims, num_classes, tuple(labels)


def stored_standardizer(tensors: dict[str, torch.Tensor], dims: dict[str, int], source: Path) -> Standardizer:
    """The training standardisation of a weights file: one finite mean and a finite, positive std per feature."""
    for kind in ("mean", "std"):
        for name, width in dims.items():
            key = f"standardizer.{kind}.{name}"
            if key not in tensors:
                raise CheckpointError(f"{source} lacks the training standardisation ({key}); re-run fit.")
            value = tensors[key]
            if tuple(value.shape) != (width,):
                raise CheckpointError(
                    f"{source}: {key} has shape {tuple(value.shape)}; modality {name!r} has {width} features, so "
                    f"expected ({width},). Re-run fit with --overwrite."
                )
            bad = ~torch.isfinite(value) if kind == "mean" else ~(torch.isfinite(value) & (value > 0))
            if bool(bad.any()):
                expected = "finite" if kind == "mean" else "finite and positive"
                raise CheckpointError(
                    f"{source}: {key} holds {int(bad.sum())} value(s) that are not {expected} (first at feature "
                    f"{int(bad.nonzero()[0, 0])}); the file is corrupt. Re-run fit with --overwrite."
                )
    state = {k: v.numpy() for k, v in tensors.items() if k.startswith("standardizer.")}
    return Standardizer.from_state(state, tuple(dims))
