"""Multi-view data in a MATLAB ``.mat`` file (v4 to v7), as multi-view benchmark sets are published.

The layout accepted, with n paired samples and M views:

* **Views** in a cell array of shape ``(1, M)`` or ``(M, 1)`` under one of the keys :data:`VIEW_KEYS`
  (``X``, ``fea``, ``data``, ...; case-insensitive), or, failing that, as separate numeric 2-D variables named
  like ``x1``, ``X2``, ``view3``, ``fea_4`` (ordered by their number). Each view is a numeric matrix, dense or
  sparse, stored ``(n, d_m)`` or ``(d_m, n)``: the orientation is detected from the number of labels. A square
  view (``n == d_m``) is ambiguous and read as ``(n, d_m)``, rows as samples.
* **Labels** under one of :data:`LABEL_KEYS` (``Y``, ``gt``, ``label``, ...; case-insensitive): a column or row
  vector of whole numbers, any numeric type. Classes are renumbered ``0..c-1`` in sorted order (published sets
  number them from 1), so no class is left empty.
* **View names** from a cell array of strings (or a char matrix) under :data:`NAME_KEYS` when the file has
  one; separate variables keep their own names; otherwise ``v0..v{M-1}``.

Other variables (folds, splits, metadata) are ignored. ``scipy.io.loadmat`` reads the file; it does not
unpickle, and only plain numeric matrices are taken from the cell array, so structs, objects and nested cells
are refused rather than interpreted. MATLAB v7.3 files are HDF5 and are refused with the fix (re-save with
``-v7``, or convert to ``.npz``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse

from probfusion.data.dataset import MultimodalDataset
from probfusion.errors import InputDataError

__all__ = ["LABEL_KEYS", "NAME_KEYS", "VIEW_KEYS", "MatContents", "load_mat", "read_mat", "to_dataset"]

VIEW_KEYS = ("x", "fea", "data", "views", "features", "feature")
LABEL_KEYS = ("y", "gt", "gnd", "truth", "label", "labels", "truelabel", "target", "targets")
NAME_KEYS = ("view_names", "viewnames", "names", "modalities")
_NUMBERED_VIEW = re.compile(r"^(?:x|view|fea|data|v)_?(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class MatContents:
    """What :func:`read_mat` found in a ``.mat`` file, before validation.

    Attributes:
        views: ``{m: (n, d_m) float64 array}``, oriented rows as samples, in file order.
        labels: ``(n,)`` labels as stored (any numeric dtype).
        view_key: Where the views came from: the cell's key, or the separate variables' names joined by ``,``.
        label_key: The labels' key.
        orientation: ``{m: "n x d_m" | "d_m x n" | "square"}``, how each view was stored (``square``: read as
            ``n x d_m``).
        ignored: The file's other variables, which were not read.
    """

    views: dict[str, np.ndarray]
    labels: np.ndarray
    view_key: str
    label_key: str
    orientation: dict[str, str]
    ignored: tuple[str, ...]


def _loadmat(path: Path, where: str) -> dict[str, object]:
    try:
        handle = path.open("rb")
    except (FileNotFoundError, IsADirectoryError):
        raise InputDataError(f"No file at {where}; check the path.") from None
    except PermissionError:
        raise InputDataError(f"Cannot read {where}: permission denied; make the file readable (chmod +r).") from None
    with handle:
        try:
            raw = scipy.io.loadmat(handle, squeeze_me=False, chars_as_strings=True)
        except NotImplementedError:
            raise InputDataError(
                f"{where} is a MATLAB v7.3 (HDF5) file, which is not supported; re-save it in MATLAB with "
                "save(file, ..., '-v7') or convert it to .npz (x_<modality>, y)."
            ) from None
        # Corrupt or truncated bytes make scipy raise almost anything (MatReadError, ValueError, OSError,
        # TypeError, zlib.error, ...); all of them mean the same thing to the user.
        except Exception as error:
            raise InputDataError(
                f"{where} is not a readable MAT file ({type(error).__name__}: {error}); expected a MATLAB v5/v7 "
                "file (e.g. save(file, 'X', 'Y', '-v7')) that is complete, not truncated."
            ) from None
    return {key: value for key, value in raw.items() if not key.startswith("__")}


def _find(variables: dict[str, object], keys: tuple[str, ...]) -> str | None:
    lower = {key.lower(): key for key in reversed(list(variables))}  # the first spelling in the file wins
    return next((lower[key] for key in keys if key in lower), None)


def _labels(variables: dict[str, object], where: str) -> tuple[str, np.ndarray]:
    key = _find(variables, LABEL_KEYS)
    if key is None:
        raise InputDataError(
            f"{where} has no labels; expected a vector under one of {list(LABEL_KEYS)} (any case), got keys "
            f"{sorted(variables)}."
        )
    value = variables[key]
    value = value.toarray() if scipy.sparse.issparse(value) else np.asarray(value)
    if value.dtype.kind not in "biuf" or value.ndim > 2 or (value.ndim == 2 and min(value.shape) != 1):
        raise InputDataError(
            f"Labels {key!r} in {where} have dtype {value.dtype} and shape {value.shape}; expected a numeric "
            "(n, 1) or (1, n) vector of class numbers."
        )
    labels = value.reshape(-1)
    if labels.dtype.kind == "f" and (not np.isfinite(labels).all() or not np.array_equal(labels, np.round(labels))):
        bad = labels[~np.isfinite(labels) | (labels != np.round(labels))]
        raise InputDataError(
            f"Labels {key!r} in {where} are not integer-valued (e.g. {bad[0]}); expected whole class numbers."
        )
    if np.unique(labels).size < 2:
        raise InputDataError(
            f"Labels {key!r} in {where} hold {np.unique(labels).size} class(es); classification needs at least two."
        )
    return key, labels


def _view_cells(variables: dict[str, object], where: str) -> tuple[str, list[tuple[str, object]], bool]:
    """The views' key, the raw views as ``(place in the file, value)``, and whether they are separate variables."""
    key = _find(variables, VIEW_KEYS)
    if key is not None:
        value = variables[key]
        if not (isinstance(value, np.ndarray) and value.dtype == object):
            return key, [(key, value)], False  # one numeric matrix: a single view
        if value.ndim != 2 or min(value.shape) != 1:
            raise InputDataError(
                f"Cell array {key!r} in {where} has shape {value.shape}; expected (1, M) or (M, 1), one view per cell."
            )
        return key, [(f"{key}{{{i + 1}}}", cell) for i, cell in enumerate(value.reshape(-1))], False
    numbered = sorted(
        ((int(match.group(1)), name) for name in variables if (match := _NUMBERED_VIEW.match(name))),
    )
    if not numbered:
        raise InputDataError(
            f"{where} has no views; expected a (1, M) cell array under one of {list(VIEW_KEYS)} (any case) or "
            f"numeric variables x1, x2, ..., got keys {sorted(variables)}."
        )
    return ",".join(name for _, name in numbered), [(name, variables[name]) for _, name in numbered], True


def _orient(value: object, place: str, n: int, where: str) -> tuple[np.ndarray, str]:
    if scipy.sparse.issparse(value):
        value = value.toarray()
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
        kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        if isinstance(value, np.ndarray) and value.dtype == object:
            kind = "a cell array"
        raise InputDataError(
            f"View {place} in {where} is {kind}, not numbers; expected a numeric (n, d_m) matrix (dense or sparse)."
        )
    if value.ndim != 2:
        raise InputDataError(f"View {place} in {where} has shape {value.shape}; expected a 2-D (n, d_m) matrix.")
    rows, cols = value.shape
    if rows == n:
        return value.astype(np.float64, copy=False), "square" if cols == n else "n x d_m"
    if cols == n:
        return value.T.astype(np.float64), "d_m x n"
    raise InputDataError(
        f"View {place} in {where} has shape {value.shape}, but there are {n} labels: neither dimension matches; "
        f"expected (n, d_m) or (d_m, n) with n = {n}. Check that the labels and views belong together."
    )


def _names(variables: dict[str, object], count: int, where: str) -> tuple[str | None, list[str] | None]:
    key = _find(variables, NAME_KEYS)
    if key is None:
        return None, None
    value = np.asarray(variables[key])
    if value.dtype == object:
        cells = [np.asarray(cell) for cell in value.reshape(-1)]
        names = [str(c.reshape(-1)[0]).strip() if c.dtype.kind == "U" and c.size == 1 else "" for c in cells]
    else:
        names = [str(name).strip() for name in value.reshape(-1)] if value.dtype.kind == "U" else []
    if len(names) != count or "" in names or len(set(names)) != count:
        raise InputDataError(
            f"View names {key!r} in {where} are {names or value.dtype}; expected {count} distinct non-empty strings "
            "(a cell array of char), one per view, or drop the variable to get v0, v1, ..."
        )
    return key, names


def read_mat(path: str | Path) -> MatContents:
    """Read the views and labels of a ``.mat`` file in the layout of this module's docstring.

    Args:
        path: Path to the file.

    Returns:
        The views ``{m: (n, d_m)}`` oriented rows as samples, the labels as stored, and where each was found.

    Raises:
        InputDataError: If the file is missing, unreadable, not a MAT file, truncated or v7.3, or has no
            labels, no views, a non-numeric view, a view whose dimensions do not match the labels, labels that
            are not whole numbers, fewer than two classes, or bad view names.
    """
    where = str(path)
    variables = _loadmat(Path(path), where)
    label_key, labels = _labels(variables, where)
    view_key, cells, separate = _view_cells(variables, where)
    name_key, names = _names(variables, len(cells), where)
    if names is None:
        names = [place for place, _ in cells] if separate else [f"v{i}" for i in range(len(cells))]
    views, orientation = {}, {}
    for name, (place, value) in zip(names, cells, strict=True):
        views[name], orientation[name] = _orient(value, f"{name!r} ({place})", labels.size, where)
    used = {label_key, *view_key.split(","), *([name_key] if name_key else [])}
    return MatContents(
        views=views,
        labels=labels,
        view_key=view_key,
        label_key=label_key,
        orientation=orientation,
        ignored=tuple(sorted(set(variables) - used)),
    )


def load_mat(path: str | Path) -> MultimodalDataset:
    """Load a multi-view ``.mat`` file (views in a cell array, labels numbered from any start).

    Args:
        path: Path to the file.

    Returns:
        The dataset, named after the path: one ``(n, d_m)`` float32 view per cell, labels renumbered
        ``0..c-1`` in the sorted order of the stored class numbers; no predefined split.

    Raises:
        InputDataError: As :func:`read_mat`, or if the views fail validation (NaN or inf).

    Example:
        >>> load_mat("../shared/data/msrc_v1/MSRC_v1.mat").dims  # doctest: +SKIP
        {'v0': 24, 'v1': 576, 'v2': 512, 'v3': 256, 'v4': 254}
    """
    return to_dataset(read_mat(path), str(path))


def to_dataset(contents: MatContents, name: str) -> MultimodalDataset:
    """Validate what :func:`read_mat` found and make it a dataset (see :func:`load_mat`).

    Args:
        contents: The file's views and labels.
        name: The dataset's name (the path).

    Returns:
        The dataset, labels renumbered ``0..c-1``.

    Raises:
        InputDataError: If the views fail validation (NaN or inf).
    """
    classes, labels = np.unique(contents.labels, return_inverse=True)
    turned = [m for m, how in contents.orientation.items() if how == "d_m x n"]
    notes = [f"labels {contents.label_key!r} {classes[0]:g}..{classes[-1]:g} as 0..{classes.size - 1}"]
    if turned:
        notes.append(f"transposed {', '.join(turned)}")
    return MultimodalDataset(
        name=name,
        views=contents.views,
        labels=labels.astype(np.int64),
        num_classes=int(classes.size),
        description=f"Multi-view data from {name} (MATLAB .mat, views {contents.view_key!r}; {'; '.join(notes)}).",
        licence="as given by the file's owner",
    )
