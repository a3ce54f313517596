"""A study folder and its Optuna study: storage, creation or resumption, locks and the global trial budget.

Layout of a study folder (``probfusion tune --out``)::

    journal.log                  the Optuna journal (JournalStorage, file backend), unless --storage is given
    trials/<number>/             one ordinary run folder per complete trial (pruned and failed ones are removed)
    best/                        the best trial's run (a copy of its folder), loadable by probfusion.load_run
    trials.csv                   one row per trial: number, state, value, seconds, note, params
    study.json                   best value, best params, trials by state, the study's name and storage
    optimization_history.png     validation NLL per trial and the best so far

The budget counts complete, pruned and running trials. A worker reserves its next trial under a lock file in
the study folder (count, then ``study.ask``), so local workers never start more than ``trials`` trials between
them. Workers on other machines (a shared ``--storage``) hold other locks: two of them asking at the same
moment can start one trial each past the budget, as ``MaxTrialsCallback`` allows too.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from probfusion.config import RunConfig
from probfusion.errors import ConfigError, ProbfusionError, RunExistsError
from probfusion.tuning.space import SearchSpace, TuneConfig

__all__ = [
    "StudyFolder",
    "count_budgeted",
    "ensure_folder",
    "fail_stale_trials",
    "open_study",
    "process_threads",
    "redact",
    "remove_trial_dir",
    "study_name",
    "trial_seed",
]

_BUDGETED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
_BASE_ATTR = "probfusion_base_config"
_SPACE_ATTR = "probfusion_space"


class StudyFolder:
    """Paths of a study folder (see the module docstring for the layout)."""

    JOURNAL = "journal.log"
    TRIALS = "trials"
    BEST = "best"
    TRIALS_CSV = "trials.csv"
    SUMMARY = "study.json"
    FIGURE = "optimization_history.png"
    LOCK = ".tune.lock"
    BUDGET_LOCK = ".budget.lock"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def file(self, name: str) -> Path:
        """The path of ``name`` inside the study folder."""
        return self.path / name

    def trial_dir(self, number: int) -> Path:
        """The run folder of trial ``number``."""
        return self.path / self.TRIALS / f"{number:04d}"

    @property
    def is_study(self) -> bool:
        """Whether the folder holds a study (a journal or a summary)."""
        return self.file(self.JOURNAL).is_file() or self.file(self.SUMMARY).is_file()

    def check_usable(self) -> None:
        """Refuse a path that is a file, or a non-empty folder that holds no study (a fit run, say).

        Raises:
            RunExistsError: If ``path`` cannot hold this study.
        """
        if self.path.exists() and not self.path.is_dir():
            raise RunExistsError(f"{self.path} is a file, not a folder; choose another --out.")
        if self.path.is_dir() and not self.is_study and any(self.path.iterdir()):
            raise RunExistsError(
                f"{self.path} is not empty and holds no tuning study; choose a new or empty folder for --out."
            )

    def check_storage(self, settings: TuneConfig) -> None:
        """Refuse to continue a study with another storage than the one it lives in.

        Raises:
            ConfigError: If ``study.json`` names another storage, or a journal is here but a URL was given.
        """
        wanted = redact(settings.storage) or self.JOURNAL
        stored = None
        if self.file(self.SUMMARY).is_file():
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stored = json.loads(self.file(self.SUMMARY).read_text(encoding="utf-8")).get("storage")
        elif self.file(self.JOURNAL).is_file():
            stored = self.JOURNAL
        if stored is not None and stored != wanted:
            hint = "omit --storage" if stored == self.JOURNAL else f"pass --storage {stored} (with its password)"
            raise ConfigError(
                f"The study in {self.path} lives in {stored}, not {wanted}; {hint} to continue it, or choose another "
                "--out."
            )

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the study folder for one ``tune`` command (its workers included).

        Raises:
            RunExistsError: If another ``tune`` command is running on this folder.
        """
        with open(self.file(self.LOCK), "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunExistsError(
                    f"Another `probfusion tune` is running on {self.path}; wait for it, or add workers to it with "
                    "--workers next time."
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def budget_lock(self) -> Iterator[None]:
        """Serialise 'count the trials, then ask for one' between the local workers."""
        with open(self.file(self.BUDGET_LOCK), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def redact(url: str | None) -> str | None:
    """``url`` without its password (``postgresql://user:***@host/db``), for files and messages."""
    return None if url is None else re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _storage(folder: StudyFolder, settings: TuneConfig) -> optuna.storages.BaseStorage | str:
    if settings.storage is not None:
        return settings.storage
    backend = optuna.storages.journal.JournalFileBackend(str(folder.file(folder.JOURNAL)))
    return optuna.storages.JournalStorage(backend)


def study_name(folder: StudyFolder, settings: TuneConfig) -> str:
    """The study's name in its storage: ``settings.study_name``, else the folder's name."""
    return settings.study_name or folder.path.resolve().name


def _pruner(settings: TuneConfig) -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(
        n_startup_trials=settings.prune_startup_trials, n_warmup_steps=settings.prune_warmup_epochs
    )


def open_study(folder: StudyFolder, settings: TuneConfig, base: RunConfig, *, create: bool) -> optuna.Study:
    """Create or load the study of ``folder``, checking that it searches ``settings.space`` over ``base``.

    Args:
        folder: The study folder (it must exist).
        settings: Storage, name, space and pruner.
        base: The base config of every trial.
        create: Create the study when it is missing (the coordinating process); workers only load it.

    Raises:
        ConfigError: If the study was started with another base config or search space.
        ProbfusionError: If the storage cannot be opened.
    """
    name = study_name(folder, settings)
    try:
        storage = _storage(folder, settings)
        if create:
            study = optuna.create_study(
                storage=storage, study_name=name, direction="minimize", pruner=_pruner(settings), load_if_exists=True
            )
        else:
            study = optuna.load_study(storage=storage, study_name=name, pruner=_pruner(settings))
    except Exception as error:  # a driver missing, a database unreachable, a bad URL: SQLAlchemy has many kinds
        if isinstance(error, ProbfusionError):
            raise
        where = redact(settings.storage) or str(folder.file(folder.JOURNAL))
        reason = redact(str(error).splitlines()[0] if str(error) else type(error).__name__)
        raise ProbfusionError(f"Cannot open the study {name!r} in {where} ({reason}); check --storage.") from None
    if create:
        _check_or_record(study, base, settings.space)
    return study


def _normalised_base(stored: Any) -> Any:
    """A stored base config as this version writes it.

    A field added since then takes the value that reproduces the stored behaviour (``_LEGACY``, else its
    default), so adding a config field does not orphan the studies started before it. Left as it is when it
    does not parse (it then differs).
    """
    try:
        return RunConfig.from_dict(stored).to_dict()
    except ConfigError:
        return stored


def _check_or_record(study: optuna.Study, base: RunConfig, space: SearchSpace) -> None:
    wanted: dict[str, Any] = {_BASE_ATTR: base.to_dict(), _SPACE_ATTR: space.to_dict()}
    stored = dict(study.user_attrs)
    if _BASE_ATTR in stored:
        stored[_BASE_ATTR] = _normalised_base(stored[_BASE_ATTR])
    if _SPACE_ATTR in stored:  # a dimension missing from an older study was not drawn there: None
        stored[_SPACE_ATTR] = {name: None for name in wanted[_SPACE_ATTR]} | stored[_SPACE_ATTR]
    for key, value in wanted.items():
        if key not in stored:
            study.set_user_attr(key, value)
        elif stored[key] != value:
            changed = sorted(k for k in value if stored[key].get(k) != value[k])
            what = "base config" if key == _BASE_ATTR else "search space"
            raise ConfigError(
                f"The study {study.study_name!r} was started with another {what} (it differs in {changed}); rerun "
                "it with the options it was started with, or choose another --out or --study-name."
            )


def fail_stale_trials(study: optuna.Study, folder: StudyFolder) -> list[int]:
    """Mark the running trials of an interrupted earlier command failed and remove their folders.

    Only for the study folder's own journal, while :meth:`StudyFolder.exclusive` is held: no live worker can
    then own a running trial. Their budget is freed, so the study makes them up.
    """
    numbers = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    for number in numbers:
        study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
        remove_trial_dir(folder, number)
    return numbers


def remove_trial_dir(folder: StudyFolder, number: int) -> None:
    """Remove the run folder of trial ``number`` if there is one."""
    shutil.rmtree(folder.trial_dir(number), ignore_errors=True)


def count_budgeted(study: optuna.Study) -> int:
    """Trials that use the budget: complete, pruned and running."""
    return len(study.get_trials(deepcopy=False, states=_BUDGETED))


def trial_seed(seed: int, index: int) -> int:
    """The sampler seed of the study's ``index``-th trial: a fixed function of the run seed and the index."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def ensure_folder(folder: StudyFolder) -> None:
    """Create the study folder and its ``trials/`` subfolder."""
    try:
        (folder.path / folder.TRIALS).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunExistsError(
            f"Cannot create the study folder {folder.path} ({error.strerror}); choose another --out."
        ) from None


def process_threads(workers: int) -> int:
    """Torch threads per worker: the cores shared out, unless ``OMP_NUM_THREADS`` already says."""
    if "OMP_NUM_THREADS" in os.environ:
        return max(1, int(os.environ["OMP_NUM_THREADS"] or 1))
    return max(1, (os.cpu_count() or 1) // workers)
