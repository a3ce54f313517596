"""The one place where input data is checked and where input errors are worded.

Public entry points (dataset constructors, ``fit``, prediction on user tensors) call these; hot paths trust
their inputs.
"""

from __future__ import annotations

import unicodedata
import warnings
from collections.abc import Mapping

import numpy as np
import torch

from probfusion.errors import InputDataError, InputDataWarning

__all__ = [
    "MAX_CLASSES",
    "RESERVED_MODALITY_NAMES",
    "check_feature_dims",
    "check_labels",
    "check_modality_name",
    "check_tensor_views",
    "check_views",
    "warn_if_unstandardised",
]

_FLOAT32_MAX = float(np.finfo(np.float32).max)

MAX_CLASSES = 50_000
"""Most classes a dataset may hold (the head and the ``(s, n, c)`` predictive grow with c)."""


RESERVED_MODALITY_NAMES = ("all", "each")
"""Words ``--modality`` gives a meaning of its own (every modality together; each one alone)."""


def check_modality_name(name: object, *, seen: Mapping[str, object] | None = None, source: str = "the data") -> str:
    """Return ``name`` in Unicode NFC form, or refuse a name the CLI and the weights file cannot carry.

    Raises:
        InputDataError: If the name is not a non-empty string, holds a comma (it splits ``--modalities a,b``), a
            dot (it nests weight names) or surrounding spaces, is a reserved word of ``--modality``, or equals a
            name in ``seen`` once both are NFC-normalised (``"café"`` written with a combining accent, say).
    """
    if not isinstance(name, str):
        raise InputDataError(f"Modality name {name!r} in {source} is not a string; name every modality.")
    normal = unicodedata.normalize("NFC", name)
    problem = None
    if not normal.strip():
        problem = "is empty"
    elif normal != normal.strip():
        problem = "starts or ends with white space"
    elif "," in normal or "." in normal:
        problem = "holds a comma or a dot (commas separate --modalities, dots nest weight names)"
    elif normal.casefold() in RESERVED_MODALITY_NAMES:
        problem = "is a reserved word of --modality ('all': every modality together, 'each': each one alone)"
    elif seen is not None and normal in seen:
        problem = "repeats another modality's name once both are in Unicode NFC form"
    if problem is not None:
        raise InputDataError(f"Modality name {name!r} in {source} {problem}; rename that array.")
    return normal


def check_views(views: Mapping[str, object], *, source: str = "the data") -> dict[str, np.ndarray]:
    """Check named modalities and return them as ``float32`` arrays.

    Args:
        views: ``{name: (n, d_m) array}``, at least one modality, paired row by row.
        source: Where the data came from, for error messages (a dataset name or a path).

    Returns:
        ``{name: (n, d_m) float32 array}`` in the given order.

    Raises:
        InputDataError: If there is no modality, an array is not 2-D or not numeric, holds NaN or inf, has no
            rows, or the modalities have unequal numbers of rows.
    """
    if len(views) == 0:
        raise InputDataError(f"{source} has no modality; expected at least one (n, d_m) array.")
    out: dict[str, np.ndarray] = {}
    for raw_name, raw in views.items():
        name = check_modality_name(raw_name, seen=out, source=source)
        array = np.asarray(raw)
        if array.dtype.kind not in "biuf":
            raise InputDataError(
                f"Modality {name!r} in {source} has dtype {array.dtype}; expected numbers (float or int)."
            )
        if array.ndim != 2:
            raise InputDataError(
                f"Modality {name!r} in {source} has shape {array.shape}; expected 2-D (n, d_m). "
                "Flatten each sample's features into one row."
            )
        if array.shape[0] == 0 or array.shape[1] == 0:
            raise InputDataError(f"Modality {name!r} in {source} is empty (shape {array.shape}).")
        if array.dtype.kind == "f":
            bad = ~np.isfinite(array)
            if bad.any():
                rows = np.flatnonzero(bad.reshape(array.shape[0], -1).any(axis=1))
                kind = "NaN" if np.isnan(array).any() else "inf"
                raise InputDataError(
                    f"Modality {name!r} in {source} holds {int(bad.sum())} {kind} value(s), first in row {rows[0]}; "
                    "impute or drop those rows before fitting."
                )
        # The model computes in float32: a value beyond its range would become inf (and then NaN) silently.
        largest = float(np.abs(array).max()) if array.dtype.kind != "b" else 1.0
        if largest > _FLOAT32_MAX:
            raise InputDataError(
                f"Modality {name!r} in {source} holds values up to {largest:.3g}, beyond the float32 range "
                f"(+-{_FLOAT32_MAX:.3g}) the model computes in; rescale those features (e.g. divide or take a log)."
            )
        array = array.astype(np.float32, copy=False)
        out[name] = array
    counts = {name: array.shape[0] for name, array in out.items()}
    if len(set(counts.values())) > 1:
        (first, n_first), *rest = counts.items()
        other, n_other = next((k, v) for k, v in rest if v != n_first)
        raise InputDataError(
            f"Modality {other!r} has {n_other} samples but {first!r} has {n_first} in {source}; "
            "all modalities must be paired row by row."
        )
    return out


def check_labels(
    labels: object, num_samples: int, *, source: str = "the data", num_classes: int | None = None
) -> tuple[np.ndarray, tuple[int | str, ...]]:
    """Check class labels and encode them as indices ``0..c-1``.

    Any distinct values may name the classes: integers (also negative or large ones, such as ``{3, 7, 42}``),
    whole-number floats, booleans or strings. They are sorted, and each row's label becomes the index of its
    value, so a model has exactly one output per class that occurs.

    Args:
        labels: ``(n,)`` class labels.
        num_samples: The number of rows n of the modalities.
        source: Where the data came from, for error messages.
        num_classes: The known number of classes c when the labels already are indices ``0..c-1`` (bundled and
            generated data, where a class may be absent from a small sample); the labels are then kept as they are.

    Returns:
        ``(n,)`` int64 indices and the ``(c,)`` tuple of the original class values (ints or strings), index order.

    Raises:
        InputDataError: If labels are not 1-D, have the wrong length, are neither whole numbers nor strings, hold
            fewer than two classes, or more than :data:`MAX_CLASSES` or half the number of rows.
    """
    array = np.asarray(labels)
    if array.ndim != 1:
        raise InputDataError(f"Labels in {source} have shape {array.shape}; expected 1-D (n,).")
    if array.shape[0] != num_samples:
        raise InputDataError(
            f"Labels in {source} have length {array.shape[0]} but the modalities have {num_samples} rows; "
            "give one label per paired sample."
        )
    if array.dtype.kind == "S":
        try:
            array = np.char.decode(array, "utf-8")
        except UnicodeDecodeError:
            raise InputDataError(f"Labels in {source} are bytes that are not UTF-8; save them as str.") from None
    if array.dtype.kind not in "biufU":
        raise InputDataError(
            f"Labels in {source} have dtype {array.dtype}; expected class labels (integers or strings)."
        )
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or not np.array_equal(array, np.round(array)):
            raise InputDataError(f"Labels in {source} are not whole numbers; expected integer or string class labels.")
        if np.abs(array).max() >= 2**63:
            raise InputDataError(f"Labels in {source} exceed the int64 range; use smaller integers or strings.")
        array = array.astype(np.int64)
    if array.dtype.kind == "b":
        array = array.astype(np.int64)
    if num_classes is not None and array.dtype.kind in "iu" and array.min() >= 0 and array.max() < num_classes:
        codes, classes = array.astype(np.int64), tuple(range(int(num_classes)))
    else:
        values, codes = np.unique(array, return_inverse=True)
        classes = tuple(values.tolist())
        if num_classes is not None and len(classes) > num_classes:
            raise InputDataError(f"Labels in {source} hold {len(classes)} classes but num_classes={num_classes}.")
    if np.unique(codes).size < 2:
        raise InputDataError(
            f"Labels in {source} hold a single class ({array[0]!r}); classification needs at least two."
        )
    if len(classes) > MAX_CLASSES:
        raise InputDataError(
            f"Labels in {source} hold {len(classes):,} classes; at most {MAX_CLASSES:,} are supported. "
            "Group rare classes, or check that y holds class labels, not a continuous target."
        )
    if len(classes) > num_samples / 2:
        raise InputDataError(
            f"Labels in {source} hold {len(classes)} classes in {num_samples} rows; every class needs at least two "
            "rows on average (one to train on, one to test). Check that y holds class labels, or add rows."
        )
    return np.asarray(codes, dtype=np.int64).reshape(num_samples), classes


def check_feature_dims(actual: Mapping[str, int], expected: Mapping[str, int], *, source: str) -> None:
    """Check that modality names and widths match what a model was built for.

    Raises:
        InputDataError: If a modality is missing, extra, or has another width d_m.
    """
    if list(actual) != list(expected):
        raise InputDataError(
            f"{source} has modalities {list(actual)}; the model expects {list(expected)} in that order."
        )
    for name, dim in expected.items():
        if actual[name] != dim:
            raise InputDataError(f"Modality {name!r} in {source} has {actual[name]} features; the model expects {dim}.")


def check_tensor_views(
    views: Mapping[str, torch.Tensor], expected_dims: Mapping[str, int], *, source: str = "the input"
) -> None:
    """Check tensors passed to a fitted model: names, widths, pairing and finiteness.

    Raises:
        InputDataError: On a mismatch with ``expected_dims``, unequal row counts, or NaN or inf.
    """
    shapes = {name: tuple(t.shape) for name, t in views.items()}
    for name, shape in shapes.items():
        if len(shape) != 2:
            raise InputDataError(f"Modality {name!r} in {source} has shape {shape}; expected (n, d_m).")
    check_feature_dims({k: s[1] for k, s in shapes.items()}, expected_dims, source=source)
    rows = {s[0] for s in shapes.values()}
    if len(rows) > 1:
        raise InputDataError(f"Modalities in {source} have unequal row counts {shapes}; pair them row by row.")
    for name, tensor in views.items():
        if not torch.isfinite(tensor).all():
            raise InputDataError(f"Modality {name!r} in {source} holds NaN or inf; impute or drop those rows.")


def warn_if_unstandardised(views: Mapping[str, np.ndarray], *, source: str, tolerance: float = 10.0) -> None:
    """Warn when standardised features are far from zero mean and unit scale (a train/test mismatch)."""
    for name, array in views.items():
        scale = float(np.abs(array).mean())
        if scale > tolerance:
            warnings.warn(
                f"Modality {name!r} in {source} has mean |x| = {scale:.3g} after standardisation; "
                "its distribution differs strongly from the training data.",
                InputDataWarning,
                stacklevel=2,
            )
