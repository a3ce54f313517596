"""The life of a fit's run folder: built out of sight, swapped in whole, resumable after a crash.

For a run folder ``T`` in parent ``P``:

* a fit builds the run in ``P/.T.partial`` (config and checkpoint first, then weights, metrics and the
  manifest) and renames it to ``T`` only when everything is written, so ``T`` always holds a complete run,
  the previous run, or nothing;
* ``--overwrite`` replaces a complete ``T`` only at that final rename (the old folder is renamed aside, the new
  one renamed in, the old one deleted), so a failed or killed fit never costs the old run;
* a fit that fails with an error removes its staging folder; a fit that is killed or interrupted leaves it,
  and ``--resume`` continues it (``--overwrite`` discards it);
* an unfinished run in ``T`` itself (the layout of older versions) is moved to the staging folder by
  ``--resume`` and continued there.

The caller holds the folder's lock (:func:`probfusion.runs.lock.run_lock`) around all of this.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from probfusion.errors import CheckpointError, RunExistsError
from probfusion.runs.run_dir import RunDirectory

__all__ = ["begin_fit", "discard", "publish", "resumable"]


def resumable(target: RunDirectory) -> RunDirectory | None:
    """The unfinished run that ``--resume`` of ``target`` continues, or None.

    That is the staging folder when it holds a run's config, else ``target`` itself when it holds an unfinished
    run of the older layout.
    """
    if target.partial.is_run:
        return target.partial
    if target.is_run and not target.is_complete:
        return target
    return None


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK | os.X_OK)


def _check_replaceable(target: RunDirectory, *, overwrite: bool) -> None:
    path = target.path
    if path.exists() and not path.is_dir():
        raise RunExistsError(f"{path} is a file, not a folder; choose another --out.")
    if not path.is_dir():
        return
    if target.is_run:
        if not overwrite:
            raise RunExistsError(
                f"{path} already holds a run; pass --overwrite to replace it, --resume to continue it, "
                "or choose another --out."
            )
        foreign = target.foreign_entries()
        if foreign:
            raise RunExistsError(
                f"{path} holds files that are not part of a run ({', '.join(foreign[:3])}); --overwrite replaces "
                "the whole folder, so move them out first or choose another --out."
            )
    elif any(path.iterdir()):
        raise RunExistsError(f"{path} is not empty and holds no run; choose a new or empty folder for --out.")
    if not _writable(path):
        raise RunExistsError(f"{path} is not writable; fix its permissions or choose another --out.")


def begin_fit(target: RunDirectory, *, overwrite: bool, resume: bool) -> RunDirectory:
    """Check the state of ``target`` and return the staging folder to fit into.

    For a new fit the staging folder is created empty; for ``resume`` it is the unfinished run to continue.

    Raises:
        RunExistsError: If ``target`` holds a run (without ``overwrite``), files of its own, is a file or is
            read-only, or an interrupted fit waits in the staging folder (without ``resume`` or ``overwrite``).
        CheckpointError: If ``resume`` is asked for but there is nothing to resume.
    """
    partial = target.partial
    if resume:
        source = resumable(target)
        if source is None:
            if target.is_complete:
                raise CheckpointError(f"{target.path} is already complete; nothing to resume.")
            raise CheckpointError(f"No run to resume at {target.path}; drop --resume to start a new run.")
        if source is target:  # an unfinished run of the older layout: continue it in the staging folder
            shutil.rmtree(partial.path, ignore_errors=True)
            os.replace(target.path, partial.path)
        return partial
    if partial.path.exists():
        if partial.is_run and not overwrite:
            raise RunExistsError(
                f"An interrupted fit of {target.path} waits in {partial.path}; pass --resume to continue it or "
                "--overwrite to start over."
            )
        shutil.rmtree(partial.path)  # discarded on --overwrite; a staging folder without a config holds nothing
    _check_replaceable(target, overwrite=overwrite)
    partial.path.mkdir(parents=True)
    return partial


def publish(work: RunDirectory, target: RunDirectory) -> None:
    """Rename the finished staging folder ``work`` to ``target``, replacing what ``target`` held."""
    trash = target.path.with_name(f".{target.path.name}.old-{os.getpid()}")
    if target.path.exists():
        os.replace(target.path, trash)
    os.replace(work.path, target.path)
    # Also the leftovers of a fit killed between the two renames above.
    for old in target.path.parent.glob(f".{target.path.name}.old-*"):
        shutil.rmtree(old, ignore_errors=True)


def discard(work: RunDirectory) -> None:
    """Remove a staging folder (after a fit failed with an error)."""
    shutil.rmtree(work.path, ignore_errors=True)
