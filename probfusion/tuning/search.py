"""``probfusion.tune``: validation-based hyperparameter search over a documented space, with Optuna.

Example:
    >>> from probfusion import RunConfig
    >>> from probfusion.tuning import TuneConfig, tune
    >>> result = tune(RunConfig(), "runs/tune-av-digits", TuneConfig(trials=30))   # doctest: +SKIP
    >>> result.best_value, result.best_params                                       # doctest: +SKIP
"""

from __future__ import annotations

import math
import multiprocessing
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from probfusion.config import RunConfig
from probfusion.data.registry import load_dataset
from probfusion.data.splits import split_dataset
from probfusion.errors import ProbfusionError
from probfusion.runs.atomic import atomic_write_json
from probfusion.tuning.outputs import best_trial, summary, write_outputs
from probfusion.tuning.space import TuneConfig
from probfusion.tuning.study import StudyFolder, ensure_folder, fail_stale_trials, open_study
from probfusion.tuning.worker import work, worker_main

__all__ = ["TuneProgress", "TuneResult", "default_study_dir", "tune"]

_POLL_SECONDS = 0.5
_STOP_SECONDS = 30.0


@dataclass(frozen=True)
class TuneProgress:
    """Where a study stands: finished trials (complete or pruned), the budget, and the best value so far."""

    done: int
    total: int
    best_value: float | None


@dataclass(frozen=True)
class TuneResult:
    """A finished search (the content of ``study.json``).

    Attributes:
        path: The study folder.
        study_name: The study's name in its storage.
        best_trial: Number of the chosen complete trial, the one ``best/`` holds (``TuneConfig.selection``: the
            lowest validation NLL, or the baseline trial when the guard keeps the base config); ``None`` when none
            completed.
        best_value: Its validation NLL.
        best_params: Its hyperparameters ``{dimension: value}``: drawn, or for a baseline trial only what it fixes
            (``{}`` for the base config itself, ``{"model": "concat"}`` for another kind's baseline).
        best_run: The best trial's run folder (``<study>/best``), loadable by :func:`probfusion.load_run`.
        n_trials: Trials by state (``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING``, ``WAITING``).
        selection_reason: Why ``best/`` holds that trial (``study.json`` ``selection.reason``).
    """

    path: Path
    study_name: str
    best_trial: int | None
    best_value: float | None
    best_params: dict[str, Any]
    best_run: Path | None
    n_trials: dict[str, int]
    selection_reason: str | None = None


def default_study_dir(config: RunConfig, root: Path | str = "runs") -> Path:
    """``runs/tune-<data>-<model>``: a fixed name, so rerunning the same command continues the same study."""
    name = config.data.name
    data = Path(name).stem if name.endswith((".npz", ".pkl", ".pickle")) else name
    return Path(root) / f"tune-{data}-{config.fusion.model.value}"


def _progress(study: optuna.Study, total: int) -> TuneProgress:
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    best = best_trial(trials)
    return TuneProgress(done=len(trials), total=total, best_value=None if best is None else best.value)


def _check_data(config: RunConfig, trust_pickle: bool) -> None:
    """Load and split the data once, so bad data or options fail before the study folder is touched."""
    split_dataset(load_dataset(config.data, seed=config.seed, trust_pickle=trust_pickle), config.data, config.seed)


def _stop(processes: list[multiprocessing.process.BaseProcess]) -> None:
    """Ask live workers to stop (SIGINT: each fails its running trial), then end any that does not."""
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGINT)
    deadline = time.monotonic() + _STOP_SECONDS
    for process in processes:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.terminate()
            process.join()


def _run_workers(
    folder: StudyFolder,
    settings: TuneConfig,
    base: RunConfig,
    trust_pickle: bool,
    study: optuna.Study,
    report: Callable[[], None],
) -> None:
    """Run ``settings.workers`` worker processes on the study; re-raise the first library error of any."""
    # forkserver: a clean server process imports the worker's stack once and forks each worker from it (fork
    # from this process would copy its threads and open handles; spawn would import torch in every worker).
    # torch.optim imports torch._dynamo on the first optimiser (about 4 s here); the server pays that once.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["probfusion.tuning.worker", "torch._dynamo"])
    errors = context.Queue()
    args = (str(folder.path), settings, base, trust_pickle, optuna.logging.get_verbosity(), errors)
    processes = [
        context.Process(target=worker_main, args=args, name=f"tune-worker-{k}") for k in range(settings.workers)
    ]
    for process in processes:
        process.start()
    failure: BaseException | None = None
    try:
        while any(p.is_alive() for p in processes):
            wait([p.sentinel for p in processes if p.is_alive()], timeout=_POLL_SECONDS)
            report()
            if not errors.empty():
                failure = errors.get()
                break
    finally:
        _stop(processes)  # no-op when all ended; on an error or Ctrl-C the others stop cleanly
    if failure is None and not errors.empty():
        failure = errors.get()
    if failure is not None:
        raise failure
    crashed = [p for p in processes if p.exitcode not in (0, None)]
    if crashed:
        raise ProbfusionError(
            f"Worker process {crashed[0].name} exited with code {crashed[0].exitcode} (its traceback is above on "
            "stderr); rerun the same command to continue the study."
        )


def tune(
    config: RunConfig,
    out: Path | str,
    settings: TuneConfig | None = None,
    *,
    trust_pickle: bool = False,
    progress: Callable[[TuneProgress], None] | None = None,
) -> TuneResult:
    """Search the hyperparameters of ``config`` on validation NLL and write the study folder ``out``.

    Each trial is ``config`` with the dimensions of ``settings.space`` drawn by TPE, fitted by
    :func:`probfusion.api.fit` into ``out/trials/<number>``. Only each run's ``val.nll`` is read: the test split
    never enters the choice (a run's ``metrics.json`` still scores it, as every fit does). Rerunning on the same
    ``out`` continues the study: the budget ``settings.trials`` counts the trials already finished.

    Args:
        config: The base config (data, model kind, seed, ...); every trial keeps its other values.
        out: The study folder (created, or continued when it holds this study).
        settings: Space, budget, workers, storage, sampler and pruner (defaults: :class:`TuneConfig`).
        trust_pickle: Allow loading a pickle dataset. Pickles run code: only for files you trust.
        progress: Called with the study's :class:`TuneProgress` at the start and as trials finish.

    Returns:
        The best trial and the counts by state (also in ``out/study.json``).

    Raises:
        ProbfusionError: On bad data or options, a study started with another config or space, a folder that
            holds something else, another ``tune`` on the same folder, or an error inside a trial.

    With ``settings.workers > 1`` the workers are separate processes (multiprocessing's forkserver); as with
    any multiprocessing, call ``tune`` from under ``if __name__ == "__main__":`` in a script.
    """
    settings = settings if settings is not None else TuneConfig()
    folder = StudyFolder(out)
    folder.check_usable()
    folder.check_storage(settings)
    _check_data(config, trust_pickle)
    created = not folder.path.exists()
    ensure_folder(folder)
    study: optuna.Study | None = None
    try:
        with folder.exclusive():
            study = open_study(folder, settings, config, create=True)
            if settings.storage is None:
                fail_stale_trials(study, folder)
            # study.json marks the folder as this study's at once (its storage too), and is rewritten at the end.
            atomic_write_json(folder.file(folder.SUMMARY), summary(study, settings, config, None))

            last: list[TuneProgress] = []

            def report(*_: Any) -> None:  # called per finished trial, or per poll with several workers
                if progress is not None and study is not None:
                    state = _progress(study, settings.trials)
                    if not last or state != last[-1]:
                        last[:] = [state]
                        progress(state)

            report()
            if settings.workers == 1:
                work(folder, settings, config, trust_pickle=trust_pickle, study=study, on_trial_end=report)
            else:
                _run_workers(folder, settings, config, trust_pickle, study, report)
            content = write_outputs(folder, study, settings, config, trust_pickle=trust_pickle)
    except ProbfusionError:
        kept = (TrialState.COMPLETE, TrialState.PRUNED)
        if created and (study is None or not study.get_trials(deepcopy=False, states=kept)):
            shutil.rmtree(folder.path, ignore_errors=True)  # nothing was tried: leave no half-made study behind
        raise
    best_run = folder.file(folder.BEST) if content["best_run"] else None
    value = content["best_value"]
    return TuneResult(
        path=folder.path,
        study_name=content["study_name"],
        best_trial=content["best_trial"],
        best_value=None if value is None or not math.isfinite(value) else float(value),
        best_params=content["best_params"],
        best_run=best_run,
        n_trials=content["n_trials"],
        selection_reason=content["selection"].get("reason"),
    )
