"""User data in a NumPy ``.npz`` archive: one ``x_<modality>`` array per modality, labels ``y``.

The layout, with n paired samples:

* ``x_<m>``: ``(n, d_m)`` numeric features of modality ``m`` within the float32 range, one array per modality
  (at least one; names in Unicode NFC, not ``all`` or ``each``, without commas or dots); the
  modality order is the order of the arrays in the archive (the keyword order of ``np.savez``);
* ``y``: ``(n,)`` class labels: any distinct integers or strings, encoded as ``0..c-1`` in sorted order (the
  dataset's ``classes`` keeps the original values);
* ``split`` (optional): ``(n,)`` ints, 0 train, 1 validation, 2 test, used by ``split="predefined"``;
* ``group`` (optional): ``(n,)`` int group ids; rows of one group stay on one side of a random split;
* ``speaker`` (optional): ``(n,)`` strings, enabling ``split="speaker"``.

Archives load with ``allow_pickle=False``: object arrays (which need pickle) are refused. Write one with,
for example, ``np.savez("mine.npz", x_image=image, x_text=text, y=labels, split=split)``.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from probfusion.data.dataset import MultimodalDataset
from probfusion.errors import InputDataError

__all__ = ["load_npz", "modality_arrays", "read_npz"]

_OPTIONAL_KEYS = ("split", "group", "speaker")


def read_npz(source: str | Path | IO[bytes], *, where: str) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` archive, without pickle.

    Args:
        source: A path or an open binary file.
        where: How to name the source in error messages (usually the path).

    Returns:
        ``{key: array}`` in archive order.

    Raises:
        InputDataError: If there is no file, it is not a readable ``.npz`` archive, or it holds object arrays.
    """
    if isinstance(source, str | Path):
        # Open the file here: np.load leaves its own handle open when the archive is corrupt.
        try:
            with Path(source).open("rb") as handle:
                return read_npz(handle, where=where)
        except (FileNotFoundError, IsADirectoryError):
            raise InputDataError(f"No file at {where}; check the path.") from None
        except PermissionError:
            raise InputDataError(
                f"Cannot read {where}: permission denied; make the file readable (chmod u+r) or copy it."
            ) from None
        except OSError as error:
            raise InputDataError(f"Cannot read {where} ({error.strerror or error}); check the file.") from None
    # Without this check np.load would try other formats (.npy, pickle) on a file that is not a zip archive.
    if not zipfile.is_zipfile(source):
        raise InputDataError(f"{where} is not a readable .npz archive (not a zip file); re-create it with np.savez.")
    source.seek(0)
    try:
        with np.load(source, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as error:
        if "Object arrays" in str(error):
            raise InputDataError(
                f"{where} holds object arrays, which need pickle to load; save plain numeric or string arrays."
            ) from None
        raise InputDataError(f"{where} is not a readable .npz archive ({error}); re-create it with np.savez.") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise InputDataError(
            f"{where} is not a readable .npz archive ({type(error).__name__}: {error}); re-create it with np.savez."
        ) from None


def modality_arrays(arrays: dict[str, np.ndarray], *, where: str) -> dict[str, np.ndarray]:
    """The ``x_<m>`` arrays of an archive as ``{m: array}``, refusing keys of no known role.

    Raises:
        InputDataError: On an array that is neither ``x_<m>``, ``y`` nor one of ``split``, ``group``, ``speaker``.
    """
    views = {key[2:]: value for key, value in arrays.items() if key.startswith("x_") and len(key) > 2}
    unknown = sorted(set(arrays) - {f"x_{m}" for m in views} - {"y", *_OPTIONAL_KEYS})
    if unknown:
        raise InputDataError(
            f"{where} has unexpected array(s) {unknown}; expected x_<modality> per modality, y, and optionally "
            f"{', '.join(_OPTIONAL_KEYS)}."
        )
    return views


def load_npz(path: str | Path) -> MultimodalDataset:
    """Load a user ``.npz`` archive in the layout of this module's docstring.

    Args:
        path: Path to the archive.

    Returns:
        The dataset, named after the path; ``split``, ``groups`` and ``speakers`` are set when present.

    Raises:
        InputDataError: If the file is missing or unreadable, has no ``x_<m>`` array or no ``y``, has an
            unknown key, or its arrays fail validation (NaN or inf, unequal lengths, bad labels or split).
    """
    where = str(path)
    arrays = read_npz(path, where=where)
    views = modality_arrays(arrays, where=where)
    if not views:
        raise InputDataError(
            f"{where} has no modality; expected one array named x_<modality> per modality, got {sorted(arrays)}."
        )
    if "y" not in arrays:
        raise InputDataError(f"{where} has no labels; expected an array named y of shape (n,).")
    speaker = arrays.get("speaker")
    if speaker is not None and speaker.dtype.kind not in "USiu":
        raise InputDataError(f"{where}: speaker has dtype {speaker.dtype}; expected strings or integers.")
    group = arrays.get("group")
    if group is not None and group.dtype.kind not in "iu":
        raise InputDataError(f"{where}: group has dtype {group.dtype}; expected integer group ids.")
    split = arrays.get("split")
    if split is not None and split.dtype.kind not in "iu":
        raise InputDataError(f"{where}: split has dtype {split.dtype}; expected integers 0, 1 or 2.")
    for key, value in (("speaker", speaker), ("group", group), ("split", split)):
        if value is not None and value.ndim != 1:
            raise InputDataError(f"{where}: {key} has shape {value.shape}; expected (n,).")
    return MultimodalDataset(
        name=where,
        views=views,
        labels=arrays["y"],
        groups=None if group is None else group.astype(np.int64),
        speakers=None if speaker is None else speaker.astype(str),
        split=split,
        description=f"User data from {where}.",
        licence="as given by the file's owner",
    )
