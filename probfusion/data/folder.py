"""User data too large for memory: a folder of ``.npy`` files, one per modality, read through memory maps.

The layout of ``DIR/``, with n paired rows (the arrays of an ``.npz``, :mod:`probfusion.data.npz`, as files):

* ``x_<m>.npy``: ``(n, d_m)`` numbers (float or int) in C order, one file per modality; the modality order is
  the sorted order of the file names (``DataConfig.modalities`` picks another);
* ``y.npy``: ``(n,)`` class labels (any distinct integers or strings);
* ``split.npy``, ``group.npy``, ``speaker.npy`` (optional): ``(n,)`` as in an ``.npz``.

Write one with ``np.save("DIR/x_image.npy", image)`` per modality, or chunk by chunk with
``np.lib.format.open_memmap``. Only the ``(n,)`` arrays are read whole. The features stay on disk: opening the
folder checks them chunk by chunk (NaN, inf, float32 range) and notes each feature's range; training reads
minibatches of rows (:class:`probfusion.inference.data.StreamingData`). Every read hands the mapped pages back
to the operating system (``madvise(MADV_DONTNEED)``; they stay in its page cache), so the resident memory of a
fit does not grow with the file: O(n) bytes for labels and indices, O(chunk) for features.
"""

from __future__ import annotations

import dataclasses
import functools
import mmap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from probfusion.data.validation import check_labels, check_modality_name
from probfusion.errors import InputDataError

__all__ = ["CHUNK_BYTES", "FolderDataset", "FolderSubset", "MappedArray", "load_folder"]

CHUNK_BYTES = 1 << 23
"""Bytes of float64 one chunk of a sequential pass holds (8 MiB)."""

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_OPTIONAL = ("split", "group", "speaker")
_MAPPED_BUDGET = 1 << 23  # most bytes of a file one read leaves mapped before it releases them (8 MiB)
_FAULT_AROUND = 1 << 16  # what one page fault of a file mapping may map on Linux (fault_around_bytes)


def chunk_rows(dim: int) -> int:
    """Rows of a ``(rows, dim)`` chunk of about :data:`CHUNK_BYTES` in float64."""
    return max(1, CHUNK_BYTES // (8 * max(dim, 1)))


class MappedArray:
    """A read-only memory map of one 2-D ``.npy`` file; rows are copied out and the mapped pages released.

    Attributes:
        path: The file.
        shape: ``(n, d_m)``.
        dtype: Its dtype as stored.
    """

    def __init__(self, path: Path) -> None:
        """Map ``path`` (header checked; nothing is read).

        Raises:
            InputDataError: If the file is not a readable ``.npy`` file, holds objects, is Fortran-ordered or
                shorter than its header says.
        """
        self.path = path
        try:
            with path.open("rb") as handle:
                version = np.lib.format.read_magic(handle)
                read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
                if version not in read:
                    raise ValueError(f"format version {version}")
                shape, fortran, dtype = read[version](handle)
                offset = handle.tell()
                self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if path.stat().st_size else None
        except (OSError, ValueError) as error:
            raise InputDataError(f"{path} is not a readable .npy file ({error}); re-write it with np.save.") from None
        if dtype.hasobject:
            raise InputDataError(f"{path} holds Python objects (they need pickle); save a numeric array.")
        if fortran and len(shape) > 1 and min(shape) > 1:
            raise InputDataError(
                f"{path} is stored in Fortran (column) order, so a row is scattered over the file; re-save it with "
                "np.save(path, np.ascontiguousarray(x))."
            )
        need = offset + int(np.prod(shape)) * dtype.itemsize
        if path.stat().st_size < need:
            raise InputDataError(
                f"{path} is truncated ({path.stat().st_size} bytes, its header needs {need}); re-write it."
            )
        self.shape, self.dtype = tuple(int(s) for s in shape), dtype
        self._row_bytes = int(np.prod(self.shape[1:])) * dtype.itemsize
        self._array = np.ndarray(shape, dtype=dtype, buffer=self._map, offset=offset) if self._map else None

    def rows(self, index: np.ndarray | slice) -> np.ndarray:
        """Copy of the rows ``index`` (a slice, or ``(k,)`` positions in any order) as float32; pages released."""
        if self._array is None:
            return np.empty((0, *self.shape[1:]), dtype=np.float32)
        if isinstance(index, slice):
            out = np.array(self._array[index], dtype=np.float32)
            self.release()
            return out
        index = np.asarray(index, dtype=np.int64)
        order = np.argsort(index, kind="stable")  # read in file order, then put the rows back in the asked order
        out = np.empty((index.size, *self.shape[1:]), dtype=np.float32)
        # A row far from the previous one maps up to a fault-around window (64 KiB on Linux) of cached pages, a
        # near one only its own bytes: release whenever the estimate reaches the budget, or one batch of random
        # rows would map most of a large file at once.
        ordered = index[order]
        gaps = np.diff(ordered, prepend=ordered[:1] - 1) * self._row_bytes
        mapped = np.cumsum(np.clip(gaps, self._row_bytes, max(self._row_bytes, _FAULT_AROUND)))
        cuts = np.flatnonzero(np.diff(mapped // _MAPPED_BUDGET)) + 1
        for part in np.split(np.arange(index.size), cuts):
            out[order[part]] = self._array[ordered[part]]
            self.release()
        return out

    def release(self) -> None:
        """Drop the mapped pages from this process (the OS keeps them cached); a no-op where madvise is missing."""
        if self._map is not None and hasattr(self._map, "madvise"):
            self._map.madvise(mmap.MADV_DONTNEED)

    def chunks(self, rows: np.ndarray | None = None) -> Iterator[np.ndarray]:
        """Float32 chunks of the rows ``rows`` (all rows when None), in order, each about :data:`CHUNK_BYTES`."""
        step = chunk_rows(int(np.prod(self.shape[1:])))
        n = self.shape[0] if rows is None else rows.size
        for start in range(0, n, step):
            yield self.rows(slice(start, start + step) if rows is None else rows[start : start + step])


def _check_features(array: MappedArray, name: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate one modality's file in chunks; return its per-feature (min, max) as float32 values."""
    if array.dtype.kind not in "biuf":
        raise InputDataError(f"Modality {name!r} in {where} has dtype {array.dtype}; expected numbers (float or int).")
    if len(array.shape) != 2 or 0 in array.shape:
        raise InputDataError(
            f"Modality {name!r} in {where} has shape {array.shape}; expected a non-empty 2-D (n, d_m) array "
            f"(re-save {array.path.name} with one row of features per sample)."
        )
    low = np.full(array.shape[1], np.inf, dtype=np.float32)
    high = np.full(array.shape[1], -np.inf, dtype=np.float32)
    step = chunk_rows(array.shape[1])
    for start in range(0, array.shape[0], step):
        raw = array._array[start : start + step]  # the values as stored, before float32
        if array.dtype.kind == "f":
            bad = ~np.isfinite(raw)
            if bad.any():
                row = start + int(np.flatnonzero(bad.any(axis=1))[0])
                kind = "NaN" if np.isnan(raw).any() else "inf"
                raise InputDataError(
                    f"Modality {name!r} in {where} holds {kind} in row {row} of {array.path.name}; impute or drop "
                    "those rows (in every file) before fitting."
                )
        largest = float(np.abs(raw).max()) if array.dtype.kind != "b" else 1.0
        if largest > _FLOAT32_MAX:
            raise InputDataError(
                f"Modality {name!r} in {where} holds values up to {largest:.3g} in {array.path.name}, beyond the "
                f"float32 range (+-{_FLOAT32_MAX:.3g}); rescale those features (divide or take a log)."
            )
        chunk = raw.astype(np.float32)
        np.minimum(low, chunk.min(axis=0), out=low)
        np.maximum(high, chunk.max(axis=0), out=high)
        array.release()
    return low, high


def _load_vector(path: Path, where: str) -> np.ndarray:
    try:
        value = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise InputDataError(
            f"{path} cannot be read without pickle ({error}); save plain numbers or strings."
        ) from None
    except OSError as error:
        raise InputDataError(f"{path} is not a readable .npy file ({error}); re-write it with np.save.") from None
    if value.ndim != 1:
        raise InputDataError(f"{path.name} in {where} has shape {value.shape}; expected (n,).")
    return value


@dataclass(frozen=True, eq=False)
class FolderDataset:
    """A folder source: memory-mapped modalities and in-memory ``(n,)`` labels; the fields of a dataset.

    It answers what :class:`~probfusion.data.dataset.MultimodalDataset` answers (``labels``, ``classes``,
    ``dims``, ``split``, :meth:`subset`, :meth:`select`) except ``views``: features are read in chunks.

    Attributes:
        name: The folder's path as given.
        arrays: ``{m: MappedArray (n, d_m)}`` in modality order.
        labels: ``(n,)`` int64 class indices into ``classes``.
        classes: The original class values.
        ranges: ``{m: ((d_m,) min, (d_m,) max)}`` of each feature over all rows (float32 values).
        groups, speakers, split: Optional ``(n,)`` metadata, as in an ``.npz``.
    """

    name: str
    arrays: Mapping[str, MappedArray]
    labels: np.ndarray
    classes: tuple[int | str, ...]
    ranges: Mapping[str, tuple[np.ndarray, np.ndarray]]
    groups: np.ndarray | None = None
    speakers: np.ndarray | None = None
    split: np.ndarray | None = None
    default_held_out_speaker: str | None = None
    ground_truth: Mapping[str, np.ndarray] = field(default_factory=dict)
    description: str = ""
    licence: str = "as given by the folder's owner"

    @property
    def num_classes(self) -> int:
        """The number of classes c."""
        return len(self.classes)

    @property
    def modality_names(self) -> tuple[str, ...]:
        """The modality names, in order."""
        return tuple(self.arrays)

    @property
    def num_samples(self) -> int:
        """The number of paired rows n."""
        return int(self.labels.shape[0])

    @property
    def dims(self) -> dict[str, int]:
        """``{m: d_m}``."""
        return {m: a.shape[1] for m, a in self.arrays.items()}

    def view_chunks(self, name: str) -> tuple[tuple[int, int], Iterator[np.ndarray]]:
        """``((n, d_m), float32 chunks of every row in order)``: what :func:`dataset_fingerprint` hashes."""
        return self.arrays[name].shape, self.arrays[name].chunks()  # type: ignore[return-value]

    def select(self, modalities: Sequence[str]) -> FolderDataset:
        """The source restricted to ``modalities``, in that order.

        Raises:
            InputDataError: If a name is not a modality of this folder.
        """
        missing = [m for m in modalities if m not in self.arrays]
        if missing:
            raise InputDataError(
                f"Dataset {self.name!r} has no modality {missing[0]!r}; its modalities are {list(self.arrays)}."
            )
        return dataclasses.replace(
            self, arrays={m: self.arrays[m] for m in modalities}, ranges={m: self.ranges[m] for m in modalities}
        )

    def subset(self, indices: np.ndarray) -> FolderSubset:
        """The rows ``indices`` (``(k,)`` ints), still on disk."""
        return FolderSubset(source=self, rows=np.asarray(indices, dtype=np.int64))


@dataclass(frozen=True, eq=False)
class FolderSubset:
    """Rows of a :class:`FolderDataset` (one split), read in chunks or minibatches.

    Attributes:
        source: The folder.
        rows: ``(k,)`` int64 row numbers in the files, in the subset's order.
    """

    source: FolderDataset
    rows: np.ndarray

    @property
    def name(self) -> str:
        """The folder's name."""
        return self.source.name

    @functools.cached_property
    def labels(self) -> np.ndarray:
        """``(k,)`` int64 class indices."""
        return self.source.labels[self.rows]

    @property
    def classes(self) -> tuple[int | str, ...]:
        """The original class values."""
        return self.source.classes

    @property
    def num_classes(self) -> int:
        """The number of classes c."""
        return self.source.num_classes

    @property
    def modality_names(self) -> tuple[str, ...]:
        """The modality names, in order."""
        return self.source.modality_names

    @property
    def dims(self) -> dict[str, int]:
        """``{m: d_m}``."""
        return self.source.dims

    @property
    def num_samples(self) -> int:
        """The number of rows k."""
        return int(self.rows.size)

    def read(self, name: str, positions: np.ndarray | slice) -> np.ndarray:
        """``(b, d_m)`` float32 raw features of modality ``name`` at ``positions`` (indices into this subset)."""
        return self.source.arrays[name].rows(self.rows[positions])

    def chunks(self, name: str) -> Iterator[np.ndarray]:
        """Float32 chunks of modality ``name`` over the subset's rows, in order."""
        return self.source.arrays[name].chunks(self.rows)

    def subset(self, indices: np.ndarray) -> FolderSubset:
        """Rows ``indices`` of this subset."""
        return FolderSubset(source=self.source, rows=self.rows[np.asarray(indices, dtype=np.int64)])

    @functools.cached_property
    def views(self) -> dict[str, np.ndarray]:
        """``{m: (k, d_m) float32}`` read whole into memory, for ``evaluate``, ``report`` and ``predict``.

        ``fit`` never reads this: it standardises and trains from chunks and minibatches.
        """
        return {m: np.concatenate(list(self.chunks(m))) for m in self.modality_names}


def load_folder(path: str | Path) -> FolderDataset:
    """Open a folder in the layout of this module's docstring and check it in chunks.

    Args:
        path: The folder.

    Returns:
        The source, named after the path.

    Raises:
        InputDataError: If a file is missing, unreadable or unknown, or the arrays fail validation (NaN or inf,
            values beyond float32, unequal lengths, bad labels or split); each message names the file.
    """
    folder = Path(path).expanduser()
    where = str(path)
    files = {p.stem: p for p in sorted(folder.glob("*.npy"))}
    unknown = sorted(k for k in files if not (k.startswith("x_") and len(k) > 2) and k not in ("y", *_OPTIONAL))
    if unknown:
        raise InputDataError(
            f"{where} has unexpected file(s) {[f'{k}.npy' for k in unknown]}; expected x_<modality>.npy per "
            f"modality, y.npy, and optionally {', '.join(f'{k}.npy' for k in _OPTIONAL)}."
        )
    arrays: dict[str, MappedArray] = {}
    for stem, file in files.items():
        if stem.startswith("x_"):
            arrays[check_modality_name(stem[2:], seen=arrays, source=where)] = MappedArray(file)
    if not arrays:
        raise InputDataError(f"{where} holds no x_<modality>.npy file; save one (n, d_m) array per modality there.")
    if "y" not in files:
        raise InputDataError(f"{where} has no labels; save them as y.npy, shape (n,).")
    ranges = {m: _check_features(a, m, where) for m, a in arrays.items()}
    counts = {m: a.shape[0] for m, a in arrays.items()}
    first = next(iter(counts))
    for m, count in counts.items():
        if count != counts[first]:
            raise InputDataError(
                f"Modality {m!r} has {count} samples but {first!r} has {counts[first]} in {where}; all modalities "
                "must be paired row by row."
            )
    n = counts[first]
    labels, classes = check_labels(_load_vector(files["y"], where), n, source=f"{where} (y.npy)")
    extra = {k: _load_vector(files[k], where) if k in files else None for k in _OPTIONAL}
    for key, kinds in (("split", "iu"), ("group", "iu"), ("speaker", "USiu")):
        value = extra[key]
        if value is not None and (value.dtype.kind not in kinds or value.shape != (n,)):
            raise InputDataError(
                f"{key}.npy in {where} has dtype {value.dtype} and shape {value.shape}; expected ({n},) "
                f"{'strings or integers' if key == 'speaker' else 'integers'}."
            )
    split = extra["split"]
    if split is not None and not np.isin(split, (0, 1, 2)).all():
        raise InputDataError(
            f"split.npy in {where} holds values {sorted(set(np.unique(split).tolist()) - {0, 1, 2})}; expected 0 "
            "(train), 1 (validation) or 2 (test)."
        )
    return FolderDataset(
        name=where,
        arrays=arrays,
        labels=labels,
        classes=classes,
        ranges=ranges,
        groups=None if extra["group"] is None else extra["group"].astype(np.int64),
        speakers=None if extra["speaker"] is None else extra["speaker"].astype(str),
        split=None if split is None else split.astype(np.int8),
        description=f"User data from the folder {where} (memory-mapped .npy files).",
    )
