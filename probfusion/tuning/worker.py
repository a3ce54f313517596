"""One worker of a study: reserve a trial, fit it with pruning, tell the result; repeat until the budget is used.

A trial is an ordinary :func:`probfusion.api.fit` into ``trials/<number>/``. After every epoch it reports the
best validation NLL so far to the study's MedianPruner, the quantity early stopping keeps and the final
objective scores. A pruned trial, one whose loss diverged (bad hyperparameters, such as a huge learning rate,
recorded as pruned with a note) and a failed one lose their folder. Any other error fails the trial and ends
the worker, so an error in the data or the code stops the study instead of repeating itself.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from probfusion.api import fit
from probfusion.config import RunConfig
from probfusion.errors import ProbfusionError, TrainingDivergedError
from probfusion.inference.training import TrainingState
from probfusion.tuning.selection import (
    BASELINE_ATTR,
    BASELINE_PARAMS_ATTR,
    MAX_STORED_ROWS,
    VAL_NLL_ROWS_ATTR,
    baseline_label,
    baseline_params,
    is_baseline,
    validation_nll_rows,
)
from probfusion.tuning.space import TuneConfig
from probfusion.tuning.study import (
    StudyFolder,
    count_budgeted,
    open_study,
    process_threads,
    remove_trial_dir,
    trial_seed,
)

__all__ = ["pruning_callback", "run_trial", "work", "worker_main"]


def pruning_callback(trial: optuna.Trial) -> Callable[[TrainingState], None]:
    """An ``on_epoch_end`` for :func:`probfusion.api.fit` that reports to the pruner and prunes.

    Raises (from the callback):
        optuna.TrialPruned: When the study's pruner says the trial is worse than the median at this epoch.
    """

    def report(state: TrainingState) -> None:
        trial.report(state.best_val_nll, step=state.epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(
                f"pruned at epoch {state.epoch}: best validation NLL {state.best_val_nll:.4f} above the median"
            )

    return report


def _finish(study: optuna.Study, trial: optuna.Trial, folder: StudyFolder, state: TrialState, note: str) -> FrozenTrial:
    remove_trial_dir(folder, trial.number)
    trial.set_user_attr("note", note)
    return study.tell(trial, state=state)


def run_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    base: RunConfig,
    settings: TuneConfig,
    folder: StudyFolder,
    *,
    trust_pickle: bool,
) -> FrozenTrial:
    """Draw ``trial``'s config, fit it into its folder and tell the study how it ended.

    Raises:
        ProbfusionError: Any fit error other than a diverged loss (the trial is failed first).
    """
    out = folder.trial_dir(trial.number)
    baseline = bool(trial.user_attrs.get(BASELINE_ATTR, False))
    fixed = baseline_params(trial)
    if baseline:
        trial.set_user_attr("note", f"baseline: {baseline_label(fixed)}, nothing drawn")
    try:
        # inside: a value the config rejects fails this trial
        config = settings.space.apply(fixed, base) if baseline else settings.space.suggest(trial, base)
        run = fit(config, out, overwrite=True, trust_pickle=trust_pickle, on_epoch_end=pruning_callback(trial))
    except optuna.TrialPruned as pruned:
        return _finish(study, trial, folder, TrialState.PRUNED, str(pruned))
    except TrainingDivergedError as error:
        return _finish(study, trial, folder, TrialState.PRUNED, f"diverged: {error}")
    except BaseException as error:
        with contextlib.suppress(Exception):  # the original error matters more than a failed bookkeeping write
            _finish(study, trial, folder, TrialState.FAIL, f"failed: {type(error).__name__}: {error}")
        raise
    value = float(run.metrics["val"]["nll"])
    if not math.isfinite(value):
        return _finish(study, trial, folder, TrialState.PRUNED, f"validation NLL is {value}")
    trial.set_user_attr("val_accuracy", run.metrics["val"]["accuracy"])
    trial.set_user_attr("epochs_run", run.metrics["epochs_run"])
    rows = validation_nll_rows(out)
    if len(rows) <= MAX_STORED_ROWS:  # the guard then needs no trial folder: a trial run on another machine too
        trial.set_user_attr(VAL_NLL_ROWS_ATTR, rows.tolist())
    return study.tell(trial, value)


def work(
    folder: StudyFolder,
    settings: TuneConfig,
    base: RunConfig,
    *,
    trust_pickle: bool,
    study: optuna.Study | None = None,
    on_trial_end: Callable[[FrozenTrial], None] | None = None,
) -> int:
    """Run trials until the study holds ``settings.trials`` budgeted trials; return how many this worker ran.

    The count and the ``ask`` happen under the folder's budget lock, so local workers never overshoot. Each
    trial gets a fresh TPE sampler seeded from the run seed and the trial's index, so one worker's study is
    reproducible, and a resumed study draws what an uninterrupted one would have.
    """
    study = study if study is not None else open_study(folder, settings, base, create=False)
    ran = 0
    while True:
        with folder.budget_lock():
            if count_budgeted(study) >= settings.trials:
                return ran
            trials = study.get_trials(deepcopy=False)
            wanted = settings.space.baselines(base) if settings.baseline_trial else []
            # The baselines draw no params, so TPE gets as many more startup trials to keep its random draws.
            startup = settings.startup_trials + len(wanted)
            study.sampler = optuna.samplers.TPESampler(
                seed=trial_seed(base.seed, len(trials)), n_startup_trials=startup
            )
            trial = study.ask()
            taken = [baseline_params(t) for t in trials if is_baseline(t) and t.state is not TrialState.FAIL]
            missing = [params for params in wanted if params not in taken]
            if missing:  # the first trials, or one making up a failed baseline
                trial.set_user_attr(BASELINE_ATTR, True)
                if missing[0]:
                    trial.set_user_attr(BASELINE_PARAMS_ATTR, missing[0])
        frozen = run_trial(study, trial, base, settings, folder, trust_pickle=trust_pickle)
        ran += 1
        if on_trial_end is not None:
            on_trial_end(frozen)


def worker_main(
    path: str,
    settings: TuneConfig,
    base: RunConfig,
    trust_pickle: bool,
    verbosity: int,
    errors: multiprocessing.Queue,
) -> None:
    """Entry point of a spawned worker process; a library error goes back to the parent through ``errors``."""
    import torch  # already imported through probfusion.api; named here for the thread setting

    torch.set_num_threads(process_threads(settings.workers))
    optuna.logging.set_verbosity(verbosity)
    try:
        work(StudyFolder(Path(path)), settings, base, trust_pickle=trust_pickle)
    except ProbfusionError as error:
        errors.put(error)
    except KeyboardInterrupt:  # the parent asked it to stop; its trial is already marked failed
        pass
