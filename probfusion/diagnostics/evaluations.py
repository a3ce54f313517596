"""A run's evaluations (``RUN/evaluations/NAME/rows.json``, written by :mod:`probfusion.evaluation`) as one table."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from probfusion.api import LoadedRun
from probfusion.errors import CheckpointError

__all__ = ["evaluation_table"]


def evaluation_table(run: LoadedRun | Path | str) -> pd.DataFrame:
    """Every evaluation of a run, one row per (evaluation, attack or shift, variant, modality, eps).

    Args:
        run: A loaded run or its directory (it is not loaded: only its ``evaluations/`` folder is read).

    Returns:
        A tidy ``DataFrame``: ``evaluation`` (the folder name) first, then the columns of ``rows.json``
        (``attack``, ``variant``, ``modality``, ``eps``, ``accuracy``, ``nll``, ``brier``, ``ece``, ``entropy``,
        ``mi``, ``auroc_entropy``, ``auroc_mi``, ...). Empty (no rows, column ``evaluation``) if there are none.

    Raises:
        CheckpointError: If a ``rows.json`` is not readable JSON with a ``rows`` list.
    """
    path = run.path if isinstance(run, LoadedRun) else Path(run)
    frames = []
    for rows_file in sorted((path / "evaluations").glob("*/rows.json")):
        try:
            rows = json.loads(rows_file.read_text(encoding="utf-8"))["rows"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CheckpointError(f"{rows_file} is not an evaluation's rows file ({error}); re-run evaluate.") from None
        frame = pd.DataFrame(rows)
        frame.insert(0, "evaluation", rows_file.parent.name)
        frames.append(frame)
    if not frames:
        return pd.DataFrame({"evaluation": pd.Series(dtype=str)})
    return pd.concat(frames, ignore_index=True)
