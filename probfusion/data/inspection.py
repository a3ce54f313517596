"""What a user data file holds, as ``probfusion datasets --inspect FILE`` prints it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from probfusion.data.mat import read_mat, to_dataset
from probfusion.data.multibench import load_multibench
from probfusion.data.npz import load_npz, read_npz
from probfusion.data.registry import MAT_SUFFIXES, NPZ_SUFFIXES, PICKLE_SUFFIXES
from probfusion.errors import ConfigError, InputDataError

__all__ = ["FileSummary", "inspect_file"]

_SPLIT_NAMES = ("train", "validation", "test")


@dataclass(frozen=True)
class FileSummary:
    """What a data file holds, after the same loading and validation as ``fit --data FILE``.

    Attributes:
        path: The file.
        format: ``npz``, ``mat`` or ``pickle``.
        modalities: ``{m: d_m}`` in modality order.
        num_samples: Number of paired samples n.
        num_classes: Number of classes c.
        class_counts: ``{stored label: rows}``, labels as the file stores them (for a MultiBench pickle: the
            classes after its score mapping).
        label_range: ``(lowest, highest)`` stored label.
        split: ``{train, validation, test: rows}`` when the file ships a split, else ``None``.
        orientation: For ``.mat``: ``{m: "n x d_m" | "d_m x n" | "square"}``, how each view was stored
            (``square`` is read as ``n x d_m``); ``None`` for other formats.
        sources: For ``.mat``: the keys the views and labels came from and the ignored keys; else empty.
    """

    path: str
    format: str
    modalities: dict[str, int]
    num_samples: int
    num_classes: int
    class_counts: dict[str, int]
    label_range: tuple[int | float, int | float]
    split: dict[str, int] | None
    orientation: dict[str, str] | None
    sources: dict[str, str]


def inspect_file(path: str | Path, *, trust_pickle: bool = False) -> FileSummary:
    """Load a ``.npz``, ``.mat`` or MultiBench pickle file and summarise it.

    Args:
        path: The file.
        trust_pickle: Allow a pickle to load (pickles run code).

    Returns:
        The summary.

    Raises:
        InputDataError: If the file is missing, unreadable or invalid (the loader's message).
        UntrustedFileError: For a pickle without ``trust_pickle``.
        ConfigError: For another extension.
    """
    path = Path(path).expanduser()
    where = str(path)
    suffix = path.suffix.lower()
    if suffix not in NPZ_SUFFIXES + MAT_SUFFIXES + PICKLE_SUFFIXES:
        raise ConfigError(f"Cannot inspect {where}: extension {path.suffix!r}; expected .npz, .mat, .pkl or .pickle.")
    if not path.is_file():
        raise InputDataError(f"No file at {where}; check the path.")
    orientation, sources = None, {}
    if suffix in MAT_SUFFIXES:
        contents = read_mat(path)
        dataset, stored, form = to_dataset(contents, where), contents.labels, "mat"
        orientation = dict(contents.orientation)
        sources = {"views": contents.view_key, "labels": contents.label_key, "ignored": ", ".join(contents.ignored)}
    elif suffix in NPZ_SUFFIXES:
        dataset, form = load_npz(path), "npz"
        stored = read_npz(path, where=where)["y"]
    else:
        dataset, form = load_multibench(path, trust_pickle=trust_pickle), "pickle"
        stored = dataset.labels
    values, counts = np.unique(np.asarray(stored).reshape(-1), return_counts=True)
    split = None
    if dataset.split is not None:
        split = {name: int((dataset.split == code).sum()) for code, name in enumerate(_SPLIT_NAMES)}
    return FileSummary(
        path=where,
        format=form,
        modalities=dataset.dims,
        num_samples=dataset.num_samples,
        num_classes=int(dataset.num_classes or 0),
        class_counts={str(_number(value)): int(count) for value, count in zip(values, counts, strict=True)},
        label_range=(_number(values[0]), _number(values[-1])),
        split=split,
        orientation=orientation,
        sources=sources,
    )


def _number(value: np.generic) -> int | float:
    """A stored label as a JSON number: an int when it is whole."""
    number = float(value)
    return int(number) if number.is_integer() else number
