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
      manifest.json            the SHA-256 of each file above, checked when the run is loaded

A folder is a run when it holds ``config.json``; it is complete when it also holds ``metrics.json``. A fit
builds the run in ``<parent>/.<name>.partial`` and renames it to ``<name>`` when it is finished, so ``<name>``
always holds a complete run, the previous one, or nothing (see :mod:`probfusion.runs.fit_folder`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probfusion.errors import CheckpointError
from probfusion.runs.manifest import MANIFEST

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
    MANIFEST = MANIFEST
    LAYOUT = (CONFIG, WEIGHTS, CHECKPOINT, METRICS_JSON, METRICS_CSV, HISTORY_CSV, LOG, MANIFEST)
    OUTPUTS = ("evaluations", "report", "figures")  # folders that evaluate and report add to a finished run

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
            CheckpointError: If the file is missing, unreadable, not valid JSON, or nested too deep to parse.
        """
        path = self.file(name)
        if not path.is_file():
            raise CheckpointError(f"{path} is missing; {self.path} is not a complete run.")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except PermissionError:
            raise CheckpointError(f"Cannot read {path} (permission denied); fix its permissions.") from None
        except OSError as error:
            raise CheckpointError(f"Cannot read {path} ({error.strerror or error}); the run is corrupt.") from None
        except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            reason = "nested too deep" if isinstance(error, RecursionError) else str(error)
            raise CheckpointError(f"{path} is not valid JSON ({reason}); the run is corrupt, re-run fit.") from None

    @property
    def partial(self) -> RunDirectory:
        """The staging folder a fit of this run builds in (``<parent>/.<name>.partial``) before it is swapped in."""
        return RunDirectory(self.path.parent / f".{self.path.name}.partial")

    def foreign_entries(self) -> list[str]:
        """Names in the folder that neither a fit nor a later command (evaluate, report) writes."""
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if p.name not in self.LAYOUT + self.OUTPUTS)
