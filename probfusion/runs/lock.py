"""One writer per run folder: an OS file lock (``filelock``) beside the folder, held while a command writes.

The lock file sits next to the run (``.<name>.lock`` in the same parent), not inside it, because a fit builds
the run in a staging folder and swaps it in at the end: the run folder itself comes and goes, the lock stays.
The lock is advisory and released by the OS when its process dies, so a ``kill -9`` never leaves a stale lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from probfusion.errors import RunExistsError, RunLockedError

__all__ = ["lock_path", "run_lock"]


def lock_path(run: Path) -> Path:
    """The lock file of the run folder ``run``: ``<parent>/.<name>.lock``."""
    run = Path(run)
    return run.parent / f".{run.name}.lock"


@contextmanager
def run_lock(run: Path) -> Iterator[None]:
    """Hold the exclusive lock of the run folder ``run`` for the block; fail at once if another process has it.

    Creates ``run``'s parent folder if needed (the lock file lives there).

    Raises:
        RunLockedError: If another process (a fit, resume or evaluation) holds the lock.
        RunExistsError: If the lock file cannot be created (a read-only or missing parent).
    """
    path = lock_path(run)
    lock = FileLock(path, blocking=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except Timeout:
        raise RunLockedError(
            f"{run} is in use by another probfusion process (lock {path}); wait for it to finish or choose "
            "another --out."
        ) from None
    except OSError as error:
        raise RunExistsError(
            f"Cannot write beside {run} ({error.strerror or error}); choose another --out or fix the folder's "
            "permissions."
        ) from None
    try:
        yield
    finally:
        lock.release()
