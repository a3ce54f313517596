"""The search space of ``probfusion tune`` and the settings of a study: typed, frozen, every default here.

A :class:`SearchSpace` names the hyperparameters that a trial draws, each with its range and scale; every
other value of a trial's config comes from the base :class:`~probfusion.config.RunConfig` (data, model kind,
seed, ...). A dimension set to ``None`` is not searched and keeps the base config's value. Sampled values are
written into the base config with :func:`dataclasses.replace` by field name, so the space does not depend on
the config classes' defaults.

Example:
    >>> from probfusion.config import RunConfig
    >>> from probfusion.tuning import IntDimension, SearchSpace
    >>> space = SearchSpace(rank=IntDimension(1, 4), latent_dim=None)
    >>> config = space.apply({"rank": 3, "learning_rate": 1e-3}, RunConfig())
    >>> config.fusion.rank, config.train.learning_rate
    (3, 0.001)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from probfusion.config import RunConfig, _JSONConfig
from probfusion.errors import ConfigError
from probfusion.options import FusionKind, PriorPenalty, RankPrior, TuneSelection, parse_option

if TYPE_CHECKING:
    import optuna

__all__ = ["BoolDimension", "ChoiceDimension", "FloatDimension", "IntDimension", "SearchSpace", "TuneConfig"]


@dataclass(frozen=True)
class IntDimension(_JSONConfig):
    """An integer hyperparameter drawn from ``[low, high]`` (both included).

    Attributes:
        low: Smallest value.
        high: Largest value.
        log: Draw uniformly in log space (``low`` must then be at least 1 and ``step`` 1).
        step: Spacing of the values ``low, low + step, ...``.
    """

    low: int
    high: int
    log: bool = False
    step: int = 1

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ConfigError(f"IntDimension needs low <= high; got low {self.low}, high {self.high}.")
        if self.step < 1:
            raise ConfigError(f"IntDimension.step must be at least 1; got {self.step}.")
        if self.log and (self.low < 1 or self.step != 1):
            raise ConfigError(
                f"A log-scale IntDimension needs low >= 1 and step 1; got low {self.low}, step {self.step}."
            )

    def suggest(self, trial: optuna.Trial, name: str) -> int:
        """Draw the value of ``name`` for ``trial``."""
        return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step)

    def describe(self) -> str:
        """The range as the README writes it, e.g. ``1 to 16, log``."""
        scale = "log" if self.log else f"step {self.step}" if self.step != 1 else "linear"
        return f"{self.low} to {self.high}, {scale}"


@dataclass(frozen=True)
class FloatDimension(_JSONConfig):
    """A real hyperparameter drawn from ``[low, high]``.

    Attributes:
        low: Smallest value.
        high: Largest value.
        log: Draw uniformly in log space (``low`` must then be positive).
    """

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low <= self.high):
            raise ConfigError(f"FloatDimension needs finite low <= high; got low {self.low}, high {self.high}.")
        if self.log and self.low <= 0:
            raise ConfigError(f"A log-scale FloatDimension needs low > 0; got {self.low}.")

    def suggest(self, trial: optuna.Trial, name: str) -> float:
        """Draw the value of ``name`` for ``trial``."""
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def describe(self) -> str:
        """The range as the README writes it, e.g. ``0.0001 to 0.03, log``."""
        return f"{self.low:g} to {self.high:g}, {'log' if self.log else 'linear'}"


@dataclass(frozen=True)
class BoolDimension(_JSONConfig):
    """A switch drawn from ``{False, True}``."""

    def suggest(self, trial: optuna.Trial, name: str) -> bool:
        """Draw the value of ``name`` for ``trial``."""
        return bool(trial.suggest_categorical(name, [False, True]))

    def describe(self) -> str:
        """The range as the README writes it: ``off or on``."""
        return "off or on"


@dataclass(frozen=True)
class ChoiceDimension(_JSONConfig):
    """A fusion kind drawn from ``choices`` (values of :class:`~probfusion.options.FusionKind`).

    Attributes:
        choices: The kinds a trial may take, at least two, each once (``("lmf", "concat")``).
    """

    choices: tuple[str, ...]

    def __post_init__(self) -> None:
        kinds = tuple(parse_option(c, FusionKind, name="search model").value for c in self.choices)
        if len(kinds) < 2 or len(set(kinds)) != len(kinds):
            raise ConfigError(
                f"ChoiceDimension needs at least two different fusion kinds; got {list(self.choices)}. Set the "
                "dimension to None to keep the base config's model."
            )
        object.__setattr__(self, "choices", kinds)

    def suggest(self, trial: optuna.Trial, name: str) -> str:
        """Draw the value of ``name`` for ``trial``."""
        return str(trial.suggest_categorical(name, list(self.choices)))

    def describe(self) -> str:
        """The range as the README writes it, e.g. ``lmf or concat``."""
        return " or ".join(self.choices)


Dimension = IntDimension | FloatDimension | BoolDimension | ChoiceDimension


@dataclass(frozen=True)
class SearchSpace(_JSONConfig):
    """The hyperparameters a trial draws; ``None`` keeps the base config's value.

    Attributes:
        rank: LMF rank r (``fusion.rank``); the maximum rank under a Bayesian rank prior. Drawn only for models
            that have a rank (``lmf``, and ``gp-mkl``, whose encoders are trained by LMF at this rank).
        latent_dim: Latent width d of each modality's jWAE encoder (``jwae.latent_dim``).
        hidden_dim: Width of the encoder and decoder MLPs' hidden layer (``jwae.hidden_dim``).
        prior_weight: Weight of the jWAE prior penalty (``jwae.prior_weight``); not drawn when the base config's
            penalty is ``none``.
        learning_rate: Adam learning rate (``train.learning_rate``).
        weight_decay: Adam (L2) weight decay (``train.weight_decay``).
        dropout: Dropout rate inside the encoders (``jwae.dropout``).
        epochs: Maximum number of training epochs (``train.epochs``); early stopping may end sooner. Not drawn
            by default: an epoch count means few optimizer steps on a small set and many on a large one, so the
            training length is drawn as ``min_steps`` instead.
        min_steps: The fewest optimizer steps the epoch budget allows (``train.min_steps``), the training
            length in the data-scaled form the defaults use; not drawn when ``epochs`` is drawn or the base
            config fixes its epochs (either makes ``min_steps`` moot).
        input_linear: The logistic regression on the concatenated inputs inside the model
            (``fusion.input_linear``); drawn only for the deterministic lmf, tfn and concat (the SVI head's skip
            is an option a study does not draw; NOTES.md §27).
        model: The fusion kind (``fusion.model``), drawn first; the other dimensions are then those of the kind
            drawn (no rank for concat). Drawn only when the base config's model is one of the choices and has
            no rank prior; each choice then has its own baseline trial (:meth:`baselines`). Off by default:
            with ``lmf or concat`` on the real-data benchmark, tune fell further below max(linear reference,
            concat) on average (-0.89 points against -0.58) and its test NLL rose (0.347 against 0.325): the
            validation rows chose concat on sets where LMF tests better (``studies/results/real_benchmark/
            NOTES.md`` §24).
    """

    rank: IntDimension | None = field(default_factory=lambda: IntDimension(1, 16, log=True))
    latent_dim: IntDimension | None = field(default_factory=lambda: IntDimension(2, 64, log=True))
    hidden_dim: IntDimension | None = field(default_factory=lambda: IntDimension(16, 256, log=True))
    prior_weight: FloatDimension | None = field(default_factory=lambda: FloatDimension(1e-3, 10.0, log=True))
    learning_rate: FloatDimension | None = field(default_factory=lambda: FloatDimension(1e-4, 3e-2, log=True))
    weight_decay: FloatDimension | None = field(default_factory=lambda: FloatDimension(1e-6, 1e-2, log=True))
    dropout: FloatDimension | None = field(default_factory=lambda: FloatDimension(0.0, 0.5))
    epochs: IntDimension | None = None
    min_steps: IntDimension | None = field(default_factory=lambda: IntDimension(300, 3000, log=True))
    input_linear: BoolDimension | None = field(default_factory=BoolDimension)
    model: ChoiceDimension | None = None

    # dimension -> (RunConfig section, field of that section)
    TARGETS: ClassVar[Mapping[str, tuple[str, str]]] = {
        "rank": ("fusion", "rank"),
        "latent_dim": ("jwae", "latent_dim"),
        "hidden_dim": ("jwae", "hidden_dim"),
        "prior_weight": ("jwae", "prior_weight"),
        "learning_rate": ("train", "learning_rate"),
        "weight_decay": ("train", "weight_decay"),
        "dropout": ("jwae", "dropout"),
        "epochs": ("train", "epochs"),
        "min_steps": ("train", "min_steps"),
        "input_linear": ("fusion", "input_linear"),
        "model": ("fusion", "model"),
    }

    def __post_init__(self) -> None:
        for name in self.TARGETS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, Dimension):
                raise ConfigError(
                    f"SearchSpace.{name} must be an IntDimension, a FloatDimension, a BoolDimension, a "
                    f"ChoiceDimension or None; got {value!r}."
                )
        misplaced = [
            name
            for name in self.TARGETS
            if getattr(self, name) is not None and isinstance(getattr(self, name), ChoiceDimension) != (name == "model")
        ]
        if misplaced:
            raise ConfigError(
                f"SearchSpace.{misplaced[0]}: the model dimension is a ChoiceDimension of fusion kinds, and only it."
            )
        if self.dropout is not None and not (self.dropout.low >= 0.0 and self.dropout.high < 1.0):
            raise ConfigError(f"SearchSpace.dropout must lie in [0, 1); got {self.dropout.describe()}.")

    def active(self, base: RunConfig) -> dict[str, Dimension]:
        """The dimensions drawn for ``base``: those not ``None`` that mean something for its model."""
        dims = {name: getattr(self, name) for name in self.TARGETS if getattr(self, name) is not None}
        if not self._switches_model(base):
            dims.pop("model", None)
        if base.fusion.model not in (FusionKind.LMF, FusionKind.GP_MKL):
            dims.pop("rank", None)
        if base.jwae.prior_penalty is PriorPenalty.NONE:
            dims.pop("prior_weight", None)
        if "epochs" in dims or base.train.epochs is not None:
            dims.pop("min_steps", None)
        # The deterministic kinds only: the Bayesian head's skip is an option that a study does not draw (NOTES §27).
        if base.fusion.rank_prior is not RankPrior.NONE or not base.fusion.accepts_input_linear(base.bayes):
            dims.pop("input_linear", None)
        return dims

    def _switches_model(self, base: RunConfig) -> bool:
        # A rank prior exists for lmf only, so a Bayesian base config keeps its kind.
        return (
            self.model is not None
            and base.fusion.model.value in self.model.choices
            and base.fusion.rank_prior is RankPrior.NONE
        )

    def baselines(self, base: RunConfig) -> list[dict[str, Any]]:
        """The params of the baseline trials, nothing drawn: ``{}`` (the base config), then each other kind.

        ``[{}]`` unless the model is drawn for ``base``; then ``[{}, {"model": "concat"}]`` for an lmf base and
        the default choices.
        """
        if self.model is None or not self._switches_model(base):
            return [{}]
        return [{}] + [{"model": kind} for kind in self.model.choices if kind != base.fusion.model.value]

    def suggest(self, trial: optuna.Trial, base: RunConfig) -> RunConfig:
        """Draw every active dimension for ``trial`` (the model first) and return the trial's config."""
        dims = self.active(base)
        params: dict[str, Any] = {}
        if "model" in dims:
            params["model"] = dims.pop("model").suggest(trial, "model")
            dims = {k: v for k, v in self.active(self.apply(params, base)).items() if k != "model"}
        params.update({name: dim.suggest(trial, name) for name, dim in dims.items()})
        return self.apply(params, base)

    def apply(self, params: Mapping[str, Any], base: RunConfig) -> RunConfig:
        """``base`` with ``params`` (``{dimension: value}``) written into their config fields.

        Raises:
            ConfigError: On an unknown dimension name, or a value the config rejects.
        """
        unknown = sorted(set(params) - set(self.TARGETS))
        if unknown:
            raise ConfigError(f"Unknown search dimension(s) {unknown}; expected a subset of {sorted(self.TARGETS)}.")
        updates: dict[str, dict[str, Any]] = {}
        for name, value in params.items():
            section, key = self.TARGETS[name]
            updates.setdefault(section, {})[key] = value
        sections = {
            section: dataclasses.replace(getattr(base, section), **values) for section, values in updates.items()
        }
        return dataclasses.replace(base, **sections)


@dataclass(frozen=True)
class TuneConfig(_JSONConfig):
    """How a study searches: the space, the trial budget, parallelism, storage, sampler and pruner.

    Attributes:
        space: The hyperparameters a trial draws.
        trials: Total trials of the study, over every worker and every rerun (complete and pruned trials count;
            a failed trial does not, so a rerun makes it up).
        workers: Local worker processes sharing the study.
        storage: An Optuna storage URL (``postgresql://user:pw@host/db``, ``sqlite:///study.db``) to join a
            study shared between machines; ``None`` keeps the study in a journal file in the study folder.
        study_name: Name of the study in the storage; ``None`` takes the study folder's name. Every machine
            sharing a storage must use the same name.
        startup_trials: Trials drawn at random before TPE models the results.
        prune_startup_trials: Trials that must finish before any trial is pruned (MedianPruner).
        prune_warmup_epochs: Epochs a trial always runs before it can be pruned.
        baseline_trial: Trial 0 fits the base config as it is (nothing drawn: the defaults), so the study's best
            is never worse on validation than what ``probfusion fit`` with the same options gives.
        selection: Which trial becomes ``best/``: ``guarded`` (the lowest validation NLL only if it beats trial 0
            by more than ``guard_z`` paired standard errors, else trial 0; :mod:`probfusion.tuning.selection`)
            or ``lowest``.
        guard_z: The margin of the guarded selection, in standard errors.
    """

    space: SearchSpace = field(default_factory=SearchSpace)
    trials: int = 30
    workers: int = 1
    storage: str | None = None
    study_name: str | None = None
    startup_trials: int = 10
    prune_startup_trials: int = 5
    prune_warmup_epochs: int = 5
    baseline_trial: bool = True
    selection: TuneSelection = TuneSelection.GUARDED
    guard_z: float = 2.0

    def __post_init__(self) -> None:
        for key in ("trials", "workers"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"TuneConfig.{key} must be a positive integer; got {value!r}.")
        object.__setattr__(self, "selection", parse_option(self.selection, TuneSelection, name="tune selection"))
        if not self.guard_z >= 0:
            raise ConfigError(f"TuneConfig.guard_z must be zero or positive; got {self.guard_z!r}.")
        for key in ("startup_trials", "prune_startup_trials", "prune_warmup_epochs"):
            if getattr(self, key) < 0:
                raise ConfigError(f"TuneConfig.{key} must be zero or positive; got {getattr(self, key)}.")
        if self.storage is not None and "://" not in self.storage:
            raise ConfigError(
                f"TuneConfig.storage must be an Optuna storage URL such as postgresql://user:pw@host/db; "
                f"got {self.storage!r}. Omit it to keep the study in the study folder."
            )
        if self.study_name is not None and not self.study_name.strip():
            raise ConfigError("TuneConfig.study_name must not be empty; omit it to use the study folder's name.")
