"""Rows to predict: a run's modalities, checked against its widths, with labels optional and modalities missing.

Unlike :class:`~probfusion.data.dataset.MultimodalDataset`, which holds data to fit on (labels required, at least
two classes), a :class:`FeatureBatch` holds whatever a user wants predicted: any number of rows, no labels, and a
modality absent for some rows (an all-NaN row) or for all of them (its array left out of the file).

File layout: an ``.npz`` with one ``x_<m>`` array ``(n, d_m)`` per modality of the run that the file has, and
optionally ``y`` ``(n,)`` labels (``split``, ``group`` and ``speaker`` arrays are ignored), or a ``.mat`` file as
:mod:`probfusion.data.mat` reads it (labels required there: they orient the views).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from probfusion.data.dataset import MultimodalDataset
from probfusion.data.npz import modality_arrays, read_npz
from probfusion.errors import InputDataError

__all__ = ["FeatureBatch", "check_features", "label_key", "labelled_rows", "load_features"]


@dataclass(frozen=True, eq=False)
class FeatureBatch:
    """Rows to predict.

    Attributes:
        views: ``{m: (n, d_m) float64}`` for every modality of the run, in the run's order; rows where the
            modality is absent hold NaN.
        present: ``{m: (n,) bool}`` whether each row has modality ``m``.
        labels: ``(n,)`` labels as stored in the file (the run's original label values), or None.
        source: Where the rows came from, for messages and records.
    """

    views: Mapping[str, np.ndarray]
    present: Mapping[str, np.ndarray]
    labels: np.ndarray | None
    source: str

    @property
    def num_rows(self) -> int:
        """The number of rows n."""
        return int(next(iter(self.views.values())).shape[0])


def label_key(value: object) -> str:
    """A label as text, with whole-number floats as integers (``3.0`` and ``3`` name one class)."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, bytes | np.bytes_):
        return value.decode("utf-8", "replace")
    return str(value)


def check_features(
    arrays: Mapping[str, np.ndarray], dims: Mapping[str, int], *, labels: np.ndarray | None = None, source: str
) -> FeatureBatch:
    """Check rows against a run's modalities and widths; mark absent modalities.

    Args:
        arrays: ``{m: (n, d_m)}`` features of some or all of the run's modalities.
        dims: ``{m: d_m}`` the run's modalities and widths, in order.
        labels: Optional ``(n,)`` labels.
        source: How to name the rows in messages.

    Raises:
        InputDataError: On a modality the run lacks, a width that differs, unequal row counts, partly-NaN rows,
            infinite values, no rows, or a row with no modality at all.
    """
    arrays = {unicodedata.normalize("NFC", str(m)): a for m, a in arrays.items()}
    unknown = sorted(set(arrays) - set(dims))
    if unknown:
        raise InputDataError(
            f"{source} has modality {unknown[0]!r}, which the run does not have; expected some of {list(dims)}."
        )
    if not arrays:
        raise InputDataError(f"{source} holds none of the run's modalities {list(dims)}; expected x_<m> arrays.")
    counts = {m: np.shape(a)[0] if np.ndim(a) else 0 for m, a in arrays.items()}
    if len(set(counts.values())) > 1:
        raise InputDataError(f"{source}: modalities have different row counts {counts}; rows must be paired.")
    n = next(iter(counts.values()))
    if n == 0:
        raise InputDataError(f"{source} has no rows to predict.")
    views, present = {}, {}
    for m, d in dims.items():
        if m not in arrays:
            views[m], present[m] = np.full((n, d), np.nan), np.zeros(n, dtype=bool)
            continue
        raw = np.asarray(arrays[m])
        if raw.ndim != 2 or raw.dtype.kind not in "biuf":
            raise InputDataError(
                f"{source}: modality {m!r} is {raw.dtype} of shape {raw.shape}; expected numeric (n, {d})."
            )
        if raw.shape[1] != d:
            raise InputDataError(f"{source}: modality {m!r} has {raw.shape[1]} features; the run expects {d}.")
        x = raw.astype(np.float64)
        if np.isinf(x).any():
            raise InputDataError(f"{source}: modality {m!r} holds inf; replace it, or mark the row missing (all NaN).")
        nan = np.isnan(x)
        partial = np.flatnonzero(nan.any(axis=1) & ~nan.all(axis=1))
        if partial.size:
            raise InputDataError(
                f"{source}: modality {m!r} row {int(partial[0])} has NaN in some features only; fill them, or "
                "mark the whole row missing (all NaN)."
            )
        views[m], present[m] = x, ~nan.all(axis=1)
    empty = np.flatnonzero(~np.any(np.stack(list(present.values())), axis=0))
    if empty.size:
        raise InputDataError(f"{source}: row {int(empty[0])} has no modality at all; drop it or give one modality.")
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if labels.shape[0] != n:
            raise InputDataError(f"{source}: y has {labels.shape[0]} labels for {n} rows; give one per row.")
    return FeatureBatch(views=views, present=present, labels=labels, source=source)


def load_features(path: str | Path, dims: Mapping[str, int]) -> FeatureBatch:
    """Read rows to predict from an ``.npz`` or ``.mat`` file (see the module docstring).

    Raises:
        InputDataError: If the file is missing, unreadable, of another type, or fails :func:`check_features`.
    """
    where = str(path)
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        arrays = read_npz(path, where=where)
        return check_features(modality_arrays(arrays, where=where), dims, labels=arrays.get("y"), source=where)
    if suffix == ".mat":
        from probfusion.data.mat import read_mat

        contents = read_mat(path)
        return check_features(contents.views, dims, labels=contents.labels, source=where)
    raise InputDataError(
        f"{where}: expected an .npz (x_<modality>, optional y) or a .mat file; got {suffix or 'no suffix'}."
    )


def labelled_rows(path: str | Path, dims: Mapping[str, int], classes: Sequence[int | str]) -> MultimodalDataset:
    """Labelled rows from a file, checked against a run's modalities, widths and classes: an external test set.

    Args:
        path: An ``.npz`` (``x_<m>`` for every modality, labels ``y`` in the run's original label values) or a
            ``.mat`` file.
        dims: ``{m: d_m}`` the run's modalities and widths.
        classes: The run's class labels, in output order.

    Returns:
        A dataset whose labels index ``classes`` (a class may be absent, or the only one present).

    Raises:
        InputDataError: On a modality missing or of another width, rows with a modality absent, no labels, or
            a label the run was not trained on.
    """
    batch = load_features(path, dims)
    if batch.labels is None:
        raise InputDataError(
            f"{path} has no labels y; scoring needs them (`probfusion predict` takes unlabelled rows)."
        )
    for m, present in batch.present.items():
        if not present.all():
            raise InputDataError(
                f"{path}: modality {m!r} is missing on {int((~present).sum())} rows; evaluate --data needs every "
                "modality on every row (`probfusion predict` handles missing ones, `--shift missing` scores them)."
            )
    index = {label_key(c): i for i, c in enumerate(classes)}
    unknown = sorted({label_key(v) for v in batch.labels} - set(index))
    if unknown:
        raise InputDataError(
            f"{path} has label(s) {unknown[:5]} that the run was not trained on; its classes are {list(classes)[:10]}."
        )
    labels = np.array([index[label_key(v)] for v in batch.labels], dtype=np.int64)
    return MultimodalDataset(
        name=str(path), views=batch.views, labels=labels, classes=tuple(classes), description=f"Rows from {path}."
    )
