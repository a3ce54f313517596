"""What a study leaves in its folder: ``trials.csv``, ``study.json``, the history figure and ``best/``.

``best/`` is a copy of the chosen trial's run folder (:mod:`probfusion.tuning.selection`: by default the lowest
validation NLL unless it is within the guard's margin of the best baseline trial), so its metrics are
exactly the ones the study scored. When the chosen trial ran on another machine (a shared ``--storage``), its
folder is not here and ``best/`` is fitted again from its params, with the same seed (equal metrics on the same
kind of device).
"""

from __future__ import annotations

import math
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from probfusion.api import fit, read_run_config
from probfusion.config import RunConfig
from probfusion.errors import ProbfusionError
from probfusion.runs.atomic import atomic_write_bytes, atomic_write_csv, atomic_write_json, staged_dir
from probfusion.runs.run_dir import RunDirectory
from probfusion.tuning.selection import Selection, baseline_params, is_baseline, select_trial
from probfusion.tuning.space import SearchSpace, TuneConfig
from probfusion.tuning.study import StudyFolder, redact

__all__ = ["best_trial", "summary", "write_outputs"]

OBJECTIVE = "validation NLL (metrics.json val.nll), minimised"


def best_trial(trials: list[FrozenTrial]) -> FrozenTrial | None:
    """The complete trial with the lowest value (the earliest on a tie); ``None`` when none completed."""
    complete = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)]
    return min(complete, key=lambda t: (t.value, t.number)) if complete else None


def trial_params(trial: FrozenTrial) -> dict[str, Any]:
    """What ``trial`` fitted besides the base config: its drawn params, or what a baseline fixes (``{}``)."""
    return {**baseline_params(trial), **trial.params}


def _seconds(trial: FrozenTrial) -> float | None:
    return None if trial.duration is None else round(trial.duration.total_seconds(), 3)


def trial_rows(trials: list[FrozenTrial], space: SearchSpace) -> list[dict[str, Any]]:
    """One row per trial: number, state, value, seconds, note, then one ``params_<dimension>`` per dimension."""
    names = [name for name in SearchSpace.TARGETS if getattr(space, name) is not None]
    rows = []
    for t in sorted(trials, key=lambda t: t.number):
        row: dict[str, Any] = {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "seconds": _seconds(t),
            "note": t.user_attrs.get("note", ""),
        }
        params = trial_params(t)
        row.update({f"params_{name}": params.get(name) for name in names})
        rows.append(row)
    return rows


def summary(
    study: optuna.Study,
    settings: TuneConfig,
    base: RunConfig,
    best_run: Path | None,
    selection: Selection | None = None,
) -> dict[str, Any]:
    """The content of ``study.json``.

    ``best_*`` describe the chosen trial (``best/``), ``lowest_*`` the trial with the lowest validation NLL,
    ``selection`` the rule and its reason. Without a ``selection`` (the summary written as a study starts or
    resumes) no trial is chosen yet: ``best_*`` are empty until the search ends.
    """
    trials = study.get_trials(deepcopy=False)
    lowest = best_trial(trials)
    best = selection.trial if selection is not None else None
    counts = Counter(t.state.name for t in trials)
    rule = {
        "rule": settings.selection.value,
        "guard_z": settings.guard_z,
        "baseline_trial": settings.baseline_trial,
        "baseline_trials": [t.number for t in trials if is_baseline(t) and t.state is TrialState.COMPLETE],
    }
    if selection is not None:
        rule.update(margin_se=selection.margin_se, reason=selection.reason)
    else:
        rule.update(reason="no complete trial" if lowest is None else "not chosen yet: the search has not ended")
    return {
        "study_name": study.study_name,
        "storage": redact(settings.storage) or StudyFolder.JOURNAL,
        "objective": OBJECTIVE,
        "trials_budget": settings.trials,
        "n_trials": {state.name: counts.get(state.name, 0) for state in TrialState},
        "best_trial": None if best is None else best.number,
        "best_value": None if best is None else best.value,
        "best_params": {} if best is None else trial_params(best),
        "best_run": None if best_run is None else StudyFolder.BEST,
        "lowest_trial": None if lowest is None else lowest.number,
        "lowest_value": None if lowest is None else lowest.value,
        "selection": rule,
        "base_config": base.to_dict(),
        "space": settings.space.to_dict(),
    }


def _figure(folder: StudyFolder, trials: list[FrozenTrial]) -> None:
    from probfusion.plotting import optimization_history  # matplotlib only when a study writes its figure

    complete = [(t.number, float(t.value)) for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
    pruned = [(t.number, float(t.value)) for t in trials if t.state is TrialState.PRUNED and t.value is not None]
    png = optimization_history(
        [c for c in complete if math.isfinite(c[1])],
        [p for p in pruned if math.isfinite(p[1])],
        ylabel="validation NLL",
        title=f"Validation NLL per trial ({len(trials)} trials)",
    )
    atomic_write_bytes(folder.file(folder.FIGURE), png)


def _write_best(
    folder: StudyFolder, best: FrozenTrial, settings: TuneConfig, base: RunConfig, trust_pickle: bool
) -> Path:
    target = folder.file(folder.BEST)
    source = RunDirectory(folder.trial_dir(best.number))
    local = source.is_complete
    wanted = read_run_config(source.path) if local else settings.space.apply(trial_params(best), base)
    if RunDirectory(target).is_complete and read_run_config(target) == wanted:
        return target  # already the best trial's run
    with staged_dir(target, overwrite=True) as staging:
        if local:
            shutil.copytree(source.path, staging, dirs_exist_ok=True)
        else:  # the best trial ran on another machine sharing the storage
            fit(wanted, staging, trust_pickle=trust_pickle)
    return target


def write_outputs(
    folder: StudyFolder, study: optuna.Study, settings: TuneConfig, base: RunConfig, *, trust_pickle: bool
) -> dict[str, Any]:
    """Write ``trials.csv``, the figure, ``best/`` (when a trial completed) and ``study.json``; return the summary.

    Raises:
        ProbfusionError: If ``best/`` has to be re-fitted and that fit fails.
    """
    trials = study.get_trials(deepcopy=False)
    atomic_write_csv(folder.file(folder.TRIALS_CSV), trial_rows(trials, settings.space))
    if trials:
        _figure(folder, trials)
    lowest = best_trial(trials)
    best_run = None
    selection = None
    if lowest is not None:
        try:
            selection = select_trial(trials, lowest, settings.selection, settings.guard_z, folder)
            best_run = _write_best(folder, selection.trial, settings, base, trust_pickle)
        except ProbfusionError as error:
            chosen = lowest if selection is None else selection.trial
            raise ProbfusionError(
                f"Cannot write {folder.file(folder.BEST)} from trial {chosen.number}: {error}"
            ) from None
    content = summary(study, settings, base, best_run, selection)
    atomic_write_json(folder.file(folder.SUMMARY), content)
    return content
