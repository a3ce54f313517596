"""Atomic file writes: a temporary file in the same folder, then ``os.replace``.

A reader never sees a half-written file, and an interrupted write leaves the previous version intact.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from probfusion.errors import RunExistsError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_csv",
    "atomic_write_json",
    "atomic_write_text",
    "staged_dir",
    "staging_dir",
]


def _umask_mode(mode: int) -> int:
    """``mode`` under the process umask: what ``open``/``mkdir`` would give (tempfile's 0600/0700 would not)."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def staging_dir(target: Path) -> Path:
    """A fresh hidden folder beside ``target``, with ordinary permissions, to fill and then ``os.replace``."""
    target = Path(target)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    staging.chmod(_umask_mode(0o777))
    return staging


@contextmanager
def staged_dir(target: Path, *, overwrite: bool = False, exists_message: str = "") -> Iterator[Path]:
    """Fill a folder out of sight, then put it in place of ``target`` whole.

    Yields a :func:`staging_dir` beside ``target``; when the block ends without error the staging folder is
    renamed to ``target`` (an existing ``target`` is moved aside first and deleted after), so readers see the
    old folder or the new one, never a mix. On any error, or if ``target`` exists and ``overwrite`` is false,
    the staging folder is removed and ``target`` is left as it was.

    Args:
        target: The folder to create or replace; its parent must exist.
        overwrite: Replace an existing ``target``.
        exists_message: The :class:`~probfusion.errors.RunExistsError` message when ``target`` exists and
            ``overwrite`` is false.

    Raises:
        RunExistsError: If ``target`` exists and ``overwrite`` is false.
    """
    target = Path(target)
    staging = staging_dir(target)
    try:
        yield staging
        trash = None
        if target.exists():
            if not overwrite:
                raise RunExistsError(exists_message or f"{target} already exists; pass --overwrite to replace it.")
            trash = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, trash)
        os.replace(staging, target)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (same-folder temporary file, fsync, ``os.replace``)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _umask_mode(0o666))
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _strict_json(obj: Any) -> Any:
    """Replace NaN and infinities (not valid JSON) by ``None``, recursively."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {key: _strict_json(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [_strict_json(value) for value in obj]
    return obj


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as strict JSON (NaN and inf become ``null``; ``indent=2, sort_keys=True``) atomically."""
    atomic_write_text(path, json.dumps(_strict_json(obj), indent=2, sort_keys=True, allow_nan=False) + "\n")


def atomic_write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write ``rows`` (dicts sharing keys; columns in first-seen order) as CSV atomically."""
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())
