"""The run directory: one folder per fitted model, with a documented layout.

Layout::

    <run>/
      config.json              the RunConfig, plus provenance (library versions, git SHA, input dims)
      weights.safetensors      final (best-validation) model weights and the training standardisation
      checkpoint.safetensors   last epoch's model, best model, optimiser state and (in its metadata) the
                               epoch counter, early-stopping state and loss history, for --resume
      metrics.json             train / val / test metrics, parameter counts, timings
      metrics.csv              the same metrics, one row per split
      history.csv              one row per epoch: losses and validation metrics
      train.log                the log of the fit

A folder is a run when it holds ``config.json``; it is complete when it also holds ``metrics.json``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probfusion.errors import CheckpointError, RunExistsError

__all__ = ["RunDirectory"]


@dataclass(frozen=True)
class RunDirectory:
    """Paths and safety rules of one run folder."""

    path: Path

    CONFIG = "config.json"
    WEIGHTS = "weights.safetensors"
    CHECKPOINT = "checkpoint.safetensors"
    METRICS_JSON = "metrics.json"
    METRICS_CSV = "metrics.csv"
    HISTORY_CSV = "history.csv"
    LOG = "train.log"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def file(self, name: str) -> Path:
        """Return the path of ``name`` inside the run."""
        return self.path / name

    @property
    def is_run(self) -> bool:
        """Whether the folder holds a run (finished or not)."""
        return self.file(self.CONFIG).is_file()

    @property
    def is_complete(self) -> bool:
        """Whether the run finished (its metrics were written)."""
        return self.file(self.METRICS_JSON).is_file() and self.file(self.WEIGHTS).is_file()

    def read_json(self, name: str) -> Any:
        """Read a JSON file of the run.

        Raises:
            CheckpointError: If the file is missing or not valid JSON.
        """
        path = self.file(name)
        if not path.is_file():
            raise CheckpointError(f"{path} is missing; {self.path} is not a complete run.")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CheckpointError(f"{path} is not valid JSON ({error}); the run is corrupt, re-run fit.") from None

    def prepare(self, *, overwrite: bool, resume: bool) -> None:
        """Make the folder ready for a new fit, or check it can be resumed.

        Args:
            overwrite: Remove an earlier run's files (only the files of the documented layout).
            resume: Keep an earlier, unfinished run to continue it.

        Raises:
            RunExistsError: If the folder holds a run and neither flag is set, or holds other files.
            CheckpointError: If ``resume`` is set but there is nothing to resume.
        """
        if self.path.exists() and not self.path.is_dir():
            raise RunExistsError(f"{self.path} is a file, not a folder; choose another --out.")
        if resume:
            if not self.file(self.CHECKPOINT).is_file():
                raise CheckpointError(
                    f"Nothing to resume in {self.path}: it holds no checkpoint; drop --resume to start a new run."
                )
            return
        if self.is_run:
            if not overwrite:
                raise RunExistsError(
                    f"{self.path} already holds a run; pass --overwrite to replace it, --resume to continue it, "
                    "or choose another --out."
                )
            self.clear()
        elif self.path.is_dir() and any(self.path.iterdir()):
            raise RunExistsError(f"{self.path} is not empty and holds no run; choose a new or empty folder for --out.")
        self.path.mkdir(parents=True, exist_ok=True)

    def clear(self) -> None:
        """Remove the files of the documented layout (and ``figures/``), leaving anything else alone."""
        for name in (
            self.CONFIG,
            self.WEIGHTS,
            self.CHECKPOINT,
            self.METRICS_JSON,
            self.METRICS_CSV,
            self.HISTORY_CSV,
            self.LOG,
        ):
            self.file(name).unlink(missing_ok=True)
        shutil.rmtree(self.file("figures"), ignore_errors=True)
