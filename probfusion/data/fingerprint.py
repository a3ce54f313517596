"""SHA-256 fingerprints of a dataset and of its split, so a run can tell whether it is given its own data.

A run stores both at fit time; ``evaluate``, ``report``, ``--resume`` (and ``predict``) recompute them from the
data they load and refuse a mismatch, so a file swapped for other rows of the same shape, or a relative path
read from another working directory, cannot silently change a result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np

from probfusion.data.dataset import MultimodalDataset
from probfusion.errors import InputDataError

__all__ = ["batch_fingerprint", "check_fingerprint", "dataset_fingerprint", "split_fingerprint"]


def _update(digest: hashlib._Hash, name: str, array: np.ndarray) -> None:
    array = np.ascontiguousarray(array)
    digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
    digest.update(array.tobytes() if array.dtype.kind != "U" else "\x00".join(array.tolist()).encode())


def dataset_fingerprint(dataset: MultimodalDataset) -> str:
    """The hex SHA-256 of a dataset's modality names, features ``(n, d_m)`` and labels ``(n,)``, in order.

    A folder source (:class:`~probfusion.data.folder.FolderDataset`) is hashed chunk by chunk, to the same value
    as the same rows in memory (an ``.npz`` and a folder holding the same arrays have one fingerprint).
    """
    digest = hashlib.sha256(b"probfusion-dataset/1|")
    chunked = getattr(dataset, "view_chunks", None)
    for name in dataset.modality_names:
        if chunked is None:
            _update(digest, f"x_{name}", dataset.views[name])
            continue
        shape, chunks = chunked(name)
        digest.update(f"x_{name}|{np.dtype(np.float32).str}|{tuple(shape)}|".encode())
        for chunk in chunks:
            digest.update(np.ascontiguousarray(chunk, dtype=np.float32).tobytes())
    _update(digest, "y", dataset.labels)
    classes = getattr(dataset, "classes", None)  # the original label values, when the labels were remapped
    if classes is not None:
        _update(digest, "classes", np.asarray([str(c) for c in classes]))
    return digest.hexdigest()


def batch_fingerprint(batch: Any) -> str:
    """The hex SHA-256 of rows to predict (a :class:`~probfusion.data.features.FeatureBatch`): features, labels."""
    digest = hashlib.sha256(b"probfusion-batch/1|")
    for name, view in batch.views.items():
        _update(digest, f"x_{name}", view)
    if batch.labels is not None:
        _update(digest, "y", np.asarray([str(v) for v in batch.labels]))
    return digest.hexdigest()


def split_fingerprint(parts: Iterable[np.ndarray]) -> str:
    """The hex SHA-256 of the (train, validation, test) row-index arrays."""
    digest = hashlib.sha256(b"probfusion-split/1|")
    for name, indices in zip(("train", "val", "test"), parts, strict=True):
        _update(digest, name, np.asarray(indices, dtype=np.int64))
    return digest.hexdigest()


def check_fingerprint(stored: dict[str, str] | None, current: dict[str, str], *, run: str, data: str) -> None:
    """Refuse data whose fingerprints differ from the ones a run stored (runs without them are not checked).

    Args:
        stored: ``{"sha256": ..., "split_sha256": ...}`` from the run, or None for runs older than fingerprints.
        current: The same for the data just loaded.
        run: The run's folder, for the message.
        data: The data's name or path, for the message.

    Raises:
        InputDataError: If the rows or the split differ.
    """
    if not stored:
        return
    if stored.get("sha256") != current["sha256"]:
        raise InputDataError(
            f"The data at {data} is not the data run {run} was fitted on (SHA-256 {current['sha256'][:12]}..., "
            f"the run recorded {str(stored.get('sha256'))[:12]}...); restore that file or fit a new run on this data."
        )
    if stored.get("split_sha256") != current["split_sha256"]:
        raise InputDataError(
            f"The train/validation/test split of {data} differs from the one run {run} was fitted on; the split "
            "must be rebuilt from the same data, seed and options (a different scikit-learn version can change it)."
        )
