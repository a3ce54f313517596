"""User data in MultiBench's affect pickle layout (CMU-MOSI, CMU-MOSEI, MUStARD, UR-FUNNY), from a path.

The layout (``MultiBench/datasets/affect/get_data.py``): a dict with parts ``'train'``, ``'valid'`` and
``'test'``, each a dict with modality arrays such as ``'vision'``, ``'audio'`` and ``'text'`` of shape
``(n, T, d_m)`` (or already ``(n, d_m)``), ``'labels'`` of shape ``(n,)``, ``(n, 1)`` or ``(n, 1, 1)``, and
metadata such as ``'id'`` (segment ids, strings or numbers). Every numeric array other than ``'labels'`` and
the metadata keys ``'id'``, ``'ids'``, ``'segment'`` and ``'raw_text'`` is a modality; non-numeric entries are
ignored. Modalities keep the order of the train part.

What this loader does to the data, all stated here so nothing happens silently:

* **Time-averaging.** Sequences ``(n, T, d_m)`` become ``(n, d_m)``: the mean over the time steps that are not
  all zero (MultiBench pads sequences with zero steps at the front); an all-zero sequence stays zero.
* **Labels.** Non-negative whole numbers are classes as given (MUStARD, UR-FUNNY). Anything else is read as a
  continuous sentiment score in [-3, 3] (CMU-MOSI, CMU-MOSEI) and mapped by ``label_scheme``: ``binary`` gives
  1 for score >= 0 and 0 for score < 0; ``7class`` gives ``round(clip(score, -3, 3)) + 3`` in 0..6 (rounding
  half to even, as torch's ``round`` in MultiBench).
* **NaN and inf are errors.** MultiBench's own loader overwrites ``-inf`` in audio with 0 (and real MOSI files
  hold some); here the file is refused with the part and row named, so that a fix is an explicit choice.
* **Split.** ``split`` is 0 for train rows, 1 for valid rows and 2 for test rows, in that row order.

Pickle runs code while loading, so a file loads only with ``trust_pickle=True`` (CLI ``--trust-pickle``).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from probfusion.data.dataset import MultimodalDataset
from probfusion.data.validation import check_views
from probfusion.errors import InputDataError, UntrustedFileError
from probfusion.options import LabelScheme, parse_option

__all__ = ["PARTS", "load_multibench", "scores_to_classes"]

PARTS = ("train", "valid", "test")
_METADATA_KEYS = frozenset({"labels", "id", "ids", "segment", "raw_text"})


def scores_to_classes(scores: np.ndarray, scheme: LabelScheme | str) -> tuple[np.ndarray, int]:
    """Map continuous sentiment scores (CMU-MOSI, in [-3, 3]) to class labels.

    Args:
        scores: ``(n,)`` finite scores.
        scheme: ``binary`` (score >= 0 -> 1, else 0) or ``7class`` (``round(clip(score, -3, 3)) + 3``).

    Returns:
        ``(labels, num_classes)``: ``(n,)`` int64 labels and 2 or 7.

    Example:
        >>> scores_to_classes(np.array([-2.6, -0.2, 0.0, 1.4]), "binary")[0].tolist()
        [0, 0, 1, 1]
        >>> scores_to_classes(np.array([-2.6, -0.2, 0.0, 1.4, 3.8]), "7class")[0].tolist()
        [0, 3, 3, 4, 6]
    """
    scheme = parse_option(scheme, LabelScheme, name="label scheme")
    if scheme is LabelScheme.BINARY:
        return (scores >= 0).astype(np.int64), 2
    return (np.round(np.clip(scores, -3.0, 3.0)) + 3).astype(np.int64), 7


def _unpickle(path: Path, *, trust_pickle: bool) -> Any:
    if not path.is_file():
        raise InputDataError(f"No file at {path}; check the path.")
    if not trust_pickle:
        raise UntrustedFileError(
            f"Refusing to load pickle {path}: unpickling can run arbitrary code; pass --trust-pickle "
            "(trust_pickle=True in Python) only if you trust the file's source."
        )
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)  # noqa: S301 -- only behind the explicit trust flag checked above
    # Unpickling malformed bytes can raise almost anything (UnpicklingError, EOFError, ValueError,
    # AttributeError, ImportError, ...); all of them mean the same thing to the user.
    except Exception as error:
        raise InputDataError(
            f"{path} is not a readable pickle ({type(error).__name__}: {error}); expected MultiBench's "
            "affect layout, a dict with 'train', 'valid' and 'test' parts."
        ) from None


def _part_arrays(part: Any, name: str, where: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Split one part into ``{modality: raw array}`` and the raw labels."""
    if not isinstance(part, Mapping):
        raise InputDataError(f"Part {name!r} of {where} is a {type(part).__name__}; expected a dict of arrays.")
    if "labels" not in part:
        raise InputDataError(f"Part {name!r} of {where} has no 'labels'; it has {sorted(map(str, part))}.")
    modalities = {}
    for key, value in part.items():
        if key in _METADATA_KEYS:
            continue
        array = np.asarray(value)
        if array.dtype.kind in "biuf":
            modalities[str(key)] = array
    return modalities, np.asarray(part["labels"])


def _time_average(array: np.ndarray, modality: str, source: str) -> np.ndarray:
    """``(n, T, d_m)`` or ``(n, d_m)`` -> ``(n, d_m)``, averaging over non-padding time steps."""
    if array.ndim == 2:
        return array.astype(np.float64)
    if array.ndim != 3:
        raise InputDataError(
            f"Modality {modality!r} in {source} has shape {array.shape}; expected (n, T, d_m) or (n, d_m)."
        )
    # Validate the raw sequences first, so NaN and inf are reported as they are in the file.
    check_views({modality: array.reshape(array.shape[0], -1)}, source=source)
    steps = array.astype(np.float64)
    real = np.any(steps != 0, axis=2, keepdims=True)  # (n, T, 1): not a zero-padding step
    counts = np.maximum(real.sum(axis=1), 1)
    return (steps * real).sum(axis=1) / counts


def load_multibench(
    path: str | Path, *, trust_pickle: bool = False, label_scheme: LabelScheme | str = LabelScheme.BINARY
) -> MultimodalDataset:
    """Load a MultiBench affect pickle as a dataset with the predefined train/valid/test split.

    Args:
        path: Path to the ``.pkl`` file.
        trust_pickle: Must be ``True``: pickle can run arbitrary code while loading.
        label_scheme: How continuous sentiment scores become classes; ignored for files whose labels are
            already classes.

    Returns:
        A dataset with one ``(n, d_m)`` float32 view per modality (time-averaged), labels, ``num_classes`` and
        ``split`` (0 train, 1 valid, 2 test), where n is the sum of the three parts' sizes.

    Raises:
        UntrustedFileError: If ``trust_pickle`` is not set; the file is not opened.
        InputDataError: If the file is missing or unreadable, is not in the layout above, or holds NaN or inf,
            unequal row counts or bad labels.
    """
    path = Path(path)
    where = str(path)
    data = _unpickle(path, trust_pickle=trust_pickle)
    if not isinstance(data, Mapping) or any(part not in data for part in PARTS):
        got = sorted(map(str, data)) if isinstance(data, Mapping) else type(data).__name__
        raise InputDataError(
            f"{where} is not in MultiBench's affect layout; expected a dict with parts {list(PARTS)}, got {got}."
        )
    views: dict[str, list[np.ndarray]] = {}
    labels, split = [], []
    order: list[str] = []
    for code, part_name in enumerate(PARTS):
        source = f"part {part_name!r} of {where}"
        raw_views, raw_labels = _part_arrays(data[part_name], part_name, where)
        if code == 0:
            order = list(raw_views)
            if not order:
                raise InputDataError(f"{source} has no numeric modality array; expected e.g. 'vision', 'audio'.")
        if sorted(raw_views) != sorted(order):
            raise InputDataError(
                f"{source} has modalities {sorted(raw_views)} but part 'train' has {sorted(order)}; "
                "every part needs the same modalities."
            )
        part_views = check_views({m: _time_average(raw_views[m], m, source) for m in order}, source=source)
        n = next(iter(part_views.values())).shape[0]
        if raw_labels.size != n:
            raise InputDataError(
                f"Labels in {source} have shape {raw_labels.shape} but the modalities have {n} rows; "
                "expected one label per row, shape (n,), (n, 1) or (n, 1, 1)."
            )
        for m in order:
            views.setdefault(m, []).append(part_views[m])
        labels.append(raw_labels.reshape(n))
        split.append(np.full(n, code, dtype=np.int8))

    all_labels = np.concatenate(labels)
    if all_labels.dtype.kind not in "biuf" or not np.isfinite(all_labels).all():
        raise InputDataError(f"Labels in {where} are not finite numbers; expected classes or sentiment scores.")
    is_classes = bool(np.all(all_labels >= 0) and np.array_equal(all_labels, np.round(all_labels)))
    if is_classes:
        classes, num_classes, how = all_labels.astype(np.int64), None, "labels as classes"
    else:
        scheme = parse_option(label_scheme, LabelScheme, name="label scheme")
        classes, num_classes = scores_to_classes(all_labels.astype(np.float64), scheme)
        how = f"scores mapped to {scheme.value} classes"
    return MultimodalDataset(
        name=where,
        views={m: np.concatenate(parts) for m, parts in views.items()},
        labels=classes,
        num_classes=num_classes,
        split=np.concatenate(split),
        description=f"MultiBench affect data from {where} (sequences time-averaged; {how}).",
        licence="as given by the dataset's owners (see MultiBench)",
    )
