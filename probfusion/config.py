"""Typed, frozen configuration for a run, validated on construction and round-tripped through JSON.

A :class:`RunConfig` holds everything that decides a run's result; two runs with equal configs (and the same
library versions) give equal metrics. ``RunConfig.from_dict(config.to_dict()) == config`` always holds.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Self, Union, get_args, get_origin, get_type_hints

from probfusion.errors import ConfigError
from probfusion.model_size import check_model_size
from probfusion.options import (
    AlignmentKind,
    AttackKind,
    Calibration,
    DeviceKind,
    EvidenceFunction,
    EvidentialFeatures,
    FusionKind,
    GuideKind,
    HeadKind,
    InferenceKind,
    KernelFeatures,
    KernelKind,
    LabelScheme,
    LMFInit,
    MKLFormulation,
    MKLMulticlass,
    NUTSParameterisation,
    PriorPenalty,
    RankPrior,
    ShiftKind,
    SplitKind,
    SyntheticLabels,
    parse_option,
)
from probfusion.robustness.budgets import NormKind, parse_budgets

__all__ = [
    "MAX_SEED",
    "BayesConfig",
    "DataConfig",
    "EvaluationConfig",
    "EvidentialConfig",
    "FusionConfig",
    "GPMKLConfig",
    "JWAEConfig",
    "RunConfig",
    "SyntheticConfig",
    "TrainConfig",
    "resolve_config",
]


MAX_SEED = 2**31 - 2
"""Largest seed. The split hands ``seed + 1`` to scikit-learn (NumPy's legacy seeding takes at most 2**32 - 1);
keeping ``seed + 1`` inside a signed 32-bit integer leaves room for every ``seed + k`` the library derives."""


def _check_seed(owner: str, seed: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{owner}.seed must be an integer from 0 to {MAX_SEED}; got {seed!r}.")


def _check_positive(owner: str, **values: float) -> None:
    for key, value in values.items():
        if not value > 0:
            raise ConfigError(f"{owner}.{key} must be positive; got {value!r}.")


def _check_positive_or_none(owner: str, **values: float | None) -> None:
    for key, value in values.items():
        if value is not None and not value > 0:
            raise ConfigError(f"{owner}.{key} must be positive, or None to derive it from the data; got {value!r}.")


def _check_non_negative(owner: str, **values: float) -> None:
    for key, value in values.items():
        if not value >= 0:
            raise ConfigError(f"{owner}.{key} must be zero or positive; got {value!r}.")


class _JSONConfig:
    """Mixin: ``to_dict`` / ``from_dict`` for frozen dataclasses of scalars, enums, tuples and sub-configs.

    ``_LEGACY`` maps a field added after runs were first stored to the value that reproduces the behaviour of
    a stored config that lacks it (so an older run loads as it was trained, whatever the new default).
    """

    _LEGACY: ClassVar[Mapping[str, Any]] = {}

    # Keys that older versions stored and that are now read past without effect (see DataConfig).
    _RETIRED_FIELDS: ClassVar[frozenset[str]] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (enums as their values, tuples as lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, _JSONConfig):
                value = value.to_dict()
            elif isinstance(value, StrEnum):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build the config from :meth:`to_dict` output; unknown keys are an error, missing keys take defaults.

        Raises:
            ConfigError: On an unknown key or a value of the wrong kind.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{cls.__name__} must be a JSON object; got {type(data).__name__}.")
        hints = get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        data = {key: value for key, value in data.items() if key not in cls._RETIRED_FIELDS}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"Unknown {cls.__name__} field(s) {unknown}; expected a subset of {sorted(names)}.")
        kwargs = {key: _coerce(hints[key], value, f"{cls.__name__}.{key}") for key, value in data.items()}
        kwargs.update({key: value for key, value in cls._LEGACY.items() if key not in data})
        return cls(**kwargs)


def _coerce(annotation: Any, value: Any, where: str) -> Any:
    """Convert a JSON value to ``annotation`` (dataclass, enum, tuple, optional or scalar)."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, where)
    if isinstance(annotation, type) and issubclass(annotation, _JSONConfig):
        return annotation.from_dict(value)
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return parse_option(value, annotation, name=where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list; got {value!r}.")
        return tuple(value)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number; got {value!r}.")
        return float(value)
    # bool is a subclass of int in Python: `"rank": true` must not pass as rank 1.
    if annotation in (int, str, bool) and (
        not isinstance(value, annotation) or (annotation is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{where} must be {annotation.__name__}; got {value!r}.")
    return value


@dataclass(frozen=True)
class SyntheticConfig(_JSONConfig):
    """Knobs of the ``synthetic`` dataset (planted multiplicative interaction of known CP rank).

    Attributes:
        num_samples: Number of samples n.
        num_modalities: Number of modalities M (at least 2).
        dim: Feature dimension d_m of every modality.
        rank: CP rank r* of the planted interaction.
        num_classes: Number of classes c.
        noise: With ``labels="argmax"``, the standard deviation of the Gaussian noise added to the scores; with
            ``labels="softmax"``, the softmax temperature.
        redundancy: In [0, 1]; the share of each modality's signal that is copied from modality 0.
        labels: How scores become labels: ``argmax`` of the noisy scores (a probit link; the Bayes-optimal
            logit then has a higher CP rank than r*) or a draw from ``softmax(score / noise)`` (the Bayes-optimal
            logit is the planted rank-r* interaction).
    """

    num_samples: int = 2000
    num_modalities: int = 2
    dim: int = 8
    rank: int = 2
    num_classes: int = 2
    noise: float = 0.1
    redundancy: float = 0.0
    labels: SyntheticLabels = SyntheticLabels.ARGMAX

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", parse_option(self.labels, SyntheticLabels, name="synthetic labels"))
        _check_positive("SyntheticConfig", num_samples=self.num_samples, dim=self.dim, rank=self.rank)
        _check_non_negative("SyntheticConfig", noise=self.noise)
        if self.num_modalities < 2:
            raise ConfigError(f"SyntheticConfig.num_modalities must be at least 2; got {self.num_modalities}.")
        if self.num_classes < 2:
            raise ConfigError(f"SyntheticConfig.num_classes must be at least 2; got {self.num_classes}.")
        if not 0.0 <= self.redundancy <= 1.0:
            raise ConfigError(f"SyntheticConfig.redundancy must lie in [0, 1]; got {self.redundancy}.")


@dataclass(frozen=True)
class DataConfig(_JSONConfig):
    """Which data, which modalities and which split.

    Attributes:
        name: A registered dataset name (``probfusion datasets``) or a path to a ``.npz`` or MultiBench pickle.
        modalities: The modalities to use, in order; ``None`` uses all of them.
        split: How to split into train, validation and test (``auto``: the data's own split if it ships one, else
            random).
        held_out_speaker: For ``split="speaker"``: the test speaker; ``None`` takes the dataset's default.
        val_fraction: Share of the non-test samples used for validation (early stopping).
        test_fraction: Share of all samples used for testing (random split only).
        label_scheme: For MultiBench data with a continuous score (CMU-MOSI): binary or seven classes.
        synthetic: Knobs of the ``synthetic`` dataset; ignored by other datasets.

    Trust to open a pickle is not part of the config: it is an argument of the call that loads the data
    (``fit(..., trust_pickle=True)``, ``load_run(..., trust_pickle=True)``, ``--trust-pickle``), so a stored
    ``config.json`` can never grant it. Configs written by older versions carry a ``trust_pickle`` key; it is
    read past and has no effect.
    """

    _RETIRED_FIELDS: ClassVar[frozenset[str]] = frozenset({"trust_pickle"})

    name: str = "av-digits"
    modalities: tuple[str, ...] | None = None
    split: SplitKind = SplitKind.AUTO
    held_out_speaker: str | None = None
    val_fraction: float = 0.15
    test_fraction: float = 0.2
    label_scheme: LabelScheme = LabelScheme.BINARY
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "split", parse_option(self.split, SplitKind, name="split"))
        object.__setattr__(self, "label_scheme", parse_option(self.label_scheme, LabelScheme, name="label scheme"))
        if self.modalities is not None:  # NFC, as the data's names are (probfusion.data.validation)
            names = tuple(unicodedata.normalize("NFC", m) if isinstance(m, str) else m for m in self.modalities)
            object.__setattr__(self, "modalities", names)
            if len(self.modalities) == 0 or len(set(self.modalities)) != len(self.modalities):
                raise ConfigError(f"DataConfig.modalities must be distinct names, at least one; got {self.modalities}.")
        for key in ("val_fraction", "test_fraction"):
            value = getattr(self, key)
            if not 0.0 < value < 1.0:
                raise ConfigError(f"DataConfig.{key} must lie strictly between 0 and 1; got {value}.")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ConfigError("DataConfig.val_fraction + test_fraction must be below 1; nothing is left to train.")


@dataclass(frozen=True)
class JWAEConfig(_JSONConfig):
    """Per-modality encoders and decoders and the joint Wasserstein autoencoder loss.

    The loss is ``reconstruction_weight * sum_m rec_m + prior_weight * sum_m D(q(z_m), N(0, I))
    + alignment_weight * align(z_1..z_M)``; a zero weight (or kind ``none``) switches a term off. Each rec_m is
    a mean over the features of modality m, so a wide view weighs no more than a narrow one.

    Attributes:
        latent_dim: Latent size d of every modality; ``None`` derives it from the data (:func:`resolve_config`).
        hidden_dim: Width of the encoder and decoder MLPs' hidden layer; ``None`` derives it from the data.
        prior_penalty: The divergence D to the N(0, I) prior.
        prior_weight: Weight of the prior penalty (lambda_prior).
        num_projections: Random projections for the sliced Wasserstein distance.
        alignment: The paired alignment term.
        alignment_weight: Weight of the alignment term (lambda_align).
        reconstruction_weight: Weight of the reconstruction term.
        dropout: Dropout rate inside the encoders.
        linear_path: Add a linear map of the input to each encoder's output (``z = MLP(x) + A x``), so a linear
            model of the inputs is reachable whatever the MLP learns. Runs stored before this field existed
            load without it.
    """

    _LEGACY: ClassVar[Mapping[str, Any]] = {"linear_path": False}

    latent_dim: int | None = None
    hidden_dim: int | None = None
    prior_penalty: PriorPenalty = PriorPenalty.SWD
    prior_weight: float = 1.0
    num_projections: int = 50
    alignment: AlignmentKind = AlignmentKind.PAIRED
    alignment_weight: float = 0.1
    reconstruction_weight: float = 1.0
    dropout: float = 0.1
    linear_path: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "prior_penalty", parse_option(self.prior_penalty, PriorPenalty, name="prior penalty"))
        object.__setattr__(self, "alignment", parse_option(self.alignment, AlignmentKind, name="alignment"))
        _check_positive("JWAEConfig", num_projections=self.num_projections)
        _check_positive_or_none("JWAEConfig", latent_dim=self.latent_dim, hidden_dim=self.hidden_dim)
        _check_non_negative(
            "JWAEConfig",
            prior_weight=self.prior_weight,
            alignment_weight=self.alignment_weight,
            reconstruction_weight=self.reconstruction_weight,
        )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"JWAEConfig.dropout must lie in [0, 1); got {self.dropout}.")


@dataclass(frozen=True)
class FusionConfig(_JSONConfig):
    """The fusion layer and its classifier head.

    Attributes:
        model: LMF, TFN or concatenation.
        rank: LMF rank r (ignored by TFN and concatenation); the maximum rank under a Bayesian rank prior.
            ``None`` derives it from the number of classes, the same for every rank prior
            (:func:`resolve_config`); the CLI and the API resolve it alike.
        fused_dim: Size h of the fused representation fed to the classifier head; ``None`` derives it from the
            number of classes.
        rank_prior: Prior on the LMF rank factors: ``none`` (point estimates), ``gaussian`` or ``ard``.
        head: The classifier head of the deterministic model: ``mlp`` (ReLU then linear) or ``linear``. With
            ``concat`` fusion, ``linear`` makes the logits additive in the modalities (late fusion). For Bayesian
            and ``gp-mkl`` runs it is the head of the deterministic first stage, which trains the encoders. Runs
            stored before this field existed load with the default.
        lmf_init: How the deterministic LMF factors start (``additive``: near late fusion; ``random``: the
            interactions dominate). Runs stored before this field existed load with ``random``.
        additive_path: LMF only (the deterministic model, and the deterministic first stage of a Bayesian run):
            add a linear map of the concatenated latents to the low-rank fusion's output, as a factorization
            machine adds linear terms to its low-rank interactions (:class:`~probfusion.fusion.lmf.LowRankFusion`).
            Runs stored before this field existed load without it.
        input_linear: The classifier adds a linear map of the concatenated standardised inputs to its logits,
            ``logits = head(fuse(z)) + W [x_1; ...; x_M] + b`` (a wide-and-deep skip: the logistic regression on
            the concatenation is inside the model), starting at zero: the deterministic lmf, tfn and concat, and
            LMF with a rank prior whose SVI head trains end to end (``BayesConfig.end_to_end``; W and b are point
            estimates beside the posterior, added to every draw's logits). ``None`` (the default) resolves off:
            it was on at 10 or fewer training rows per class (``studies/results/real_benchmark/NOTES.md``
            §13-14) until the pool below made it redundant there and its presence made the pool worse (§27-28);
            runs stored under that rule load as they were trained. With the pool off (``linear_pool=False``, a
            folder source) §14's evidence still argues for it with a handful of rows per class. Runs stored
            before this field existed load without it.
        linear_pool: The final predictor pools its logits after training with a logistic regression fitted
            apart on the concatenated standardised inputs: ``softmax(((1 - w) f + w g) / T)`` for the
            deterministic lmf, tfn and concat models, each posterior draw's logits ``(1 - w) f_k + w g`` for LMF
            with a rank prior (T = 1), with the regression's C, ``w`` (and T) chosen on validation NLL
            (:mod:`probfusion.inference.linear_pool`; ``metrics.json`` reports them beside both models' own
            scores). Not for gp-mkl, tmc or rcml. ``None`` turns it on for those models when the training rows
            are in memory (not for a folder source; NOTES.md §20-21). Runs stored before this field existed load
            without it.
        linear_pool_c_grid: The regression's inverse regularisation strengths to choose from.
        linear_pool_steps: The pool weight ``w`` is chosen from ``0, 1/k, ..., 1`` with ``k`` this many steps.
    """

    _LEGACY: ClassVar[Mapping[str, Any]] = {
        "lmf_init": LMFInit.RANDOM,
        "additive_path": False,
        "input_linear": False,
        "linear_pool": False,
    }
    # The threshold of the retired rows-per-class rule of input_linear (NOTES.md §28), read past in stored configs.
    _RETIRED_FIELDS: ClassVar[frozenset[str]] = frozenset({"input_linear_rows_per_class"})

    model: FusionKind = FusionKind.LMF
    rank: int | None = None
    fused_dim: int | None = None
    rank_prior: RankPrior = RankPrior.NONE
    head: HeadKind = HeadKind.MLP
    lmf_init: LMFInit = LMFInit.ADDITIVE
    additive_path: bool = False
    input_linear: bool | None = None
    linear_pool: bool | None = None
    linear_pool_c_grid: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)
    linear_pool_steps: int = 20

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", parse_option(self.model, FusionKind, name="model"))
        object.__setattr__(self, "lmf_init", parse_option(self.lmf_init, LMFInit, name="LMF init"))
        object.__setattr__(self, "rank_prior", parse_option(self.rank_prior, RankPrior, name="rank prior"))
        object.__setattr__(self, "head", parse_option(self.head, HeadKind, name="head"))
        _check_positive_or_none("FusionConfig", rank=self.rank, fused_dim=self.fused_dim)
        if self.rank_prior is not RankPrior.NONE and self.model is not FusionKind.LMF:
            raise ConfigError(
                f"Rank prior {self.rank_prior.value!r} applies to model 'lmf' only; got model {self.model.value!r}. "
                "Use rank prior 'none' with other models."
            )
        if self.input_linear and not self.accepts_input_linear():
            raise ConfigError(
                "FusionConfig.input_linear applies to the deterministic lmf, tfn and concat models and to LMF with a "
                "rank prior whose SVI head trains end to end (a second stage would drop it); got model "
                f"{self.model.value!r} with rank prior {self.rank_prior.value!r}."
            )

        if not self.linear_pool_c_grid or any(not (c > 0 and math.isfinite(c)) for c in self.linear_pool_c_grid):
            raise ConfigError(
                "FusionConfig.linear_pool_c_grid must hold positive finite values; "
                f"got {list(self.linear_pool_c_grid)}."
            )
        if isinstance(self.linear_pool_steps, bool) or not isinstance(self.linear_pool_steps, int):
            raise ConfigError(f"FusionConfig.linear_pool_steps must be an integer; got {self.linear_pool_steps!r}.")
        _check_positive("FusionConfig", linear_pool_steps=self.linear_pool_steps)
        if self.linear_pool and not self.accepts_linear_pool():
            raise ConfigError(
                "FusionConfig.linear_pool applies to the lmf, tfn and concat models (and LMF with a rank prior); "
                f"got model {self.model.value!r}. Leave linear_pool unset (None) or False for it."
            )

    def accepts_linear_pool(self) -> bool:
        """Whether ``linear_pool`` can apply: lmf (any rank prior), tfn or concat."""
        return self.model in (FusionKind.LMF, FusionKind.TFN, FusionKind.CONCAT)

    def accepts_input_linear(self, bayes: BayesConfig | None = None) -> bool:
        """Whether ``input_linear`` can apply (no second stage on frozen latents would drop it).

        It can for a deterministic lmf, tfn or concat model, and for LMF with a rank prior whose SVI head trains
        end to end.

        Args:
            bayes: The Bayesian stage's settings; ``None`` reads :class:`BayesConfig`'s defaults.
        """
        if self.rank_prior is RankPrior.NONE:
            return self.model in (FusionKind.LMF, FusionKind.TFN, FusionKind.CONCAT)
        return self.model is FusionKind.LMF and (bayes if bayes is not None else BayesConfig()).end_to_end


@dataclass(frozen=True)
class TrainConfig(_JSONConfig):
    """Optimisation: Adam on cross-entropy plus the jWAE loss, with early stopping on validation NLL.

    The model returned holds the weights of the best validation epoch.

    Attributes:
        epochs: Maximum number of passes over the training set; ``None`` derives it from ``min_steps``
            (:func:`resolve_config`), so a small training set still gets enough optimizer steps.
        batch_size: Minibatch size.
        learning_rate: Adam learning rate.
        weight_decay: Adam (L2) weight decay; ``None`` derives it from the number of training rows n as
            ``weight_decay_rows / n`` (:func:`resolve_config`): a fixed Gaussian prior precision on the weights,
            whose share in the mean loss shrinks as the data grow. Runs stored before the data-scaled default
            have an explicit value (1e-4 then).
        weight_decay_rows: With ``weight_decay=None``: the numerator of ``weight_decay_rows / n``.
        patience: Stop after this many epochs without a better validation NLL; ``None`` derives it from the
            number of epochs.
        min_steps: With ``epochs=None``: the fewest optimizer steps the epoch budget must allow. Runs stored
            before this field existed have explicit epochs and ignore it.
        calibration: ``temperature``: early stopping on the validation NLL after temperature scaling (``T >= 1``),
            which ignores the overconfidence that training grows once the ranking of classes stops improving, and
            a deterministic model's logits divided by the T fitted at the best epoch; ``none``: the raw
            validation NLL, no recalibration. Runs stored before this field existed load with ``none``.
    """

    _LEGACY: ClassVar[Mapping[str, Any]] = {"min_steps": 0, "calibration": Calibration.NONE, "weight_decay": 1e-4}

    epochs: int | None = None
    batch_size: int = 128
    learning_rate: float = 3e-3
    weight_decay: float | None = None
    weight_decay_rows: float = 0.5
    patience: int | None = None
    min_steps: int = 1500
    calibration: Calibration = Calibration.TEMPERATURE

    def __post_init__(self) -> None:
        object.__setattr__(self, "calibration", parse_option(self.calibration, Calibration, name="calibration"))
        _check_positive("TrainConfig", batch_size=self.batch_size, learning_rate=self.learning_rate)
        _check_positive_or_none("TrainConfig", epochs=self.epochs, patience=self.patience)
        _check_non_negative("TrainConfig", min_steps=self.min_steps, weight_decay_rows=self.weight_decay_rows)
        if self.weight_decay is not None:
            _check_non_negative("TrainConfig", weight_decay=self.weight_decay)
        if self.batch_size < 2:  # the jWAE's batch statistics (unbiased MMD, SWD) need two rows
            raise ConfigError(f"TrainConfig.batch_size must be at least 2; got {self.batch_size}.")


@dataclass(frozen=True)
class BayesConfig(_JSONConfig):
    """The Bayesian rank-factor stage (used when ``FusionConfig.rank_prior`` is ``gaussian`` or ``ard``).

    SVI (the default route) trains the encoders and the variational posterior of the fusion head's factors
    together, end to end (``train_encoders``); Laplace and NUTS train the encoders first (the deterministic stage),
    then freeze them and fit the head's posterior on the frozen latents.

    Attributes:
        inference: SVI or NUTS.
        guide: Variational family for SVI.
        prior_shape: Gamma shape a0 of each component's precision lambda_i (ARD).
        prior_rate: Gamma rate b0 of each component's precision lambda_i (ARD).
        prior_precision: Fixed precision of the factors under the ``gaussian`` rank prior.
        svi_steps: SVI optimisation steps.
        learning_rate: Adam learning rate of SVI.
        posterior_samples: Monte Carlo samples of the posterior predictive (and of rank summaries).
        num_warmup: NUTS warm-up steps per chain.
        num_draws: NUTS draws per chain.
        num_chains: NUTS chains.
        nuts_parameterisation: How NUTS sees the ARD factors: ``non-centred`` (``w = lambda^(-1/2) eps``, no
            funnel) or ``centred`` (``w`` itself; Neal's funnel where ARD prunes). Runs stored before this field
            were sampled centred.
        batch_size: SVI minibatch size (the likelihood is scaled to the full training set).
        realign_every: SVI steps between exact re-expressions of the guide (components sorted by weight; q and
            the predictive unchanged; 0: never). Off by default: measured, it does not help the fit.
        activity_threshold: A component (merged with any components collinear with it) is active in a posterior
            draw when removing it moves more than this share of the logits' variance.
        laplace_rounds: Laplace: at most this many fixed-point updates of the ARD precisions (evidence).
        train_encoders: SVI: train the encoders together with the guide (the ELBO per training row plus the jWAE
            loss, Adam, early stopping on the posterior predictive's validation NLL) instead of fitting the guide on
            a deterministic stage's frozen latents, which fit the training rows better than new rows (the posterior
            given them inherits that). ``None`` (the default): on for SVI, off for Laplace and NUTS. NOTES.md §23's
            rule adopted it (head alone +2.9 points, test NLL 0.54 -> 0.37 over six real sets). ``True`` off SVI
            is an error.
            Runs stored before this field used frozen latents.
    """

    # The re-expression no longer refits components to a tolerance (it is exact); older configs carry the key.
    _RETIRED_FIELDS: ClassVar[frozenset[str]] = frozenset({"realign_tolerance"})
    _LEGACY: ClassVar[Mapping[str, Any]] = {
        "nuts_parameterisation": NUTSParameterisation.CENTRED,
        "train_encoders": False,
    }

    inference: InferenceKind = InferenceKind.SVI
    guide: GuideKind = GuideKind.MEAN_FIELD
    prior_shape: float = 1.0
    prior_rate: float = 1.0
    prior_precision: float = 1.0
    svi_steps: int = 1500
    learning_rate: float = 0.02
    posterior_samples: int = 100
    num_warmup: int = 200
    num_draws: int = 200
    num_chains: int = 2
    nuts_parameterisation: NUTSParameterisation = NUTSParameterisation.NON_CENTRED
    batch_size: int = 256
    realign_every: int = 0
    activity_threshold: float = 0.005
    laplace_rounds: int = 50
    train_encoders: bool | None = None

    @property
    def end_to_end(self) -> bool:
        """Whether the head is trained with its encoders (``train_encoders``, ``None`` resolved: on for SVI)."""
        if self.train_encoders is None:
            return self.inference is InferenceKind.SVI
        return self.train_encoders

    def __post_init__(self) -> None:
        object.__setattr__(self, "inference", parse_option(self.inference, InferenceKind, name="inference"))
        if self.train_encoders is not None and not isinstance(self.train_encoders, bool):
            raise ConfigError(
                f"BayesConfig.train_encoders must be true, false or None (on for SVI); got {self.train_encoders!r}."
            )
        if self.train_encoders and self.inference is not InferenceKind.SVI:
            raise ConfigError(
                "BayesConfig.train_encoders applies to inference 'svi' only; got inference "
                f"{self.inference.value!r}. Drop train_encoders or use inference 'svi'."
            )
        object.__setattr__(self, "guide", parse_option(self.guide, GuideKind, name="guide"))
        object.__setattr__(
            self,
            "nuts_parameterisation",
            parse_option(self.nuts_parameterisation, NUTSParameterisation, name="NUTS parameterisation"),
        )
        _check_positive(
            "BayesConfig",
            prior_shape=self.prior_shape,
            prior_rate=self.prior_rate,
            prior_precision=self.prior_precision,
            svi_steps=self.svi_steps,
            learning_rate=self.learning_rate,
            posterior_samples=self.posterior_samples,
            num_warmup=self.num_warmup,
            num_draws=self.num_draws,
            num_chains=self.num_chains,
            batch_size=self.batch_size,
            laplace_rounds=self.laplace_rounds,
        )
        _check_non_negative("BayesConfig", realign_every=self.realign_every)
        if self.inference is InferenceKind.NUTS and self.num_draws < 4:  # Pyro's MCMC diagnostics need 4
            raise ConfigError(f"BayesConfig.num_draws must be at least 4 for NUTS; got {self.num_draws}.")
        if not 0.0 < self.activity_threshold < 1.0:
            raise ConfigError(
                "BayesConfig.activity_threshold must lie in (0, 1) (a share of variance); "
                f"got {self.activity_threshold}."
            )


@dataclass(frozen=True)
class GPMKLConfig(_JSONConfig):
    """The GP + MKL baseline (used when ``FusionConfig.model`` is ``gp-mkl``).

    Attributes:
        kernel: Per-modality kernel.
        features: Kernels on the jWAE latents or on the standardised inputs.
        formulation: The convex problem that sets the kernel weights.
        multiclass: Lanckriet with more than two classes: ``joint`` solves one problem whose one-vs-rest SVM
            duals share the kernel weights; ``one-vs-rest`` solves one problem per class and averages the weights
            (the behaviour before ``multiclass`` existed, and what a stored config without the field loads as).
        basis_rank: Joint multi-class only: the factors are projected on this many leading left singular vectors
            of their concatenation (c n q dense entries in the interior-point KKT system instead of c n M k);
            ``None`` solves on the factors as they are. 48: below it the weights moved away from the unprojected
            optimum on four real sets, above it they came no closer in the worst case
            (``studies/benchmarks/mkl_basis_rank.py``).
        svm_c: Box constraint C of the SVM dual inside the MKL problem.
        max_exact_points: Up to this many training points the GP is exact; above, variational with inducing points.
        num_inducing: Inducing points of the variational GP.
        gp_steps: Optimisation steps of the GP's remaining hyperparameters (the kernel weights stay fixed).
        posterior_samples: Samples of the GP's latent function for the predictive.
        factor_rank: Most columns k of each kernel's low-rank factor in the MKL problem (its cost grows as
            n (M k)^2 per interior-point iteration).
        learning_rate: Adam learning rate of the GP's remaining hyperparameters.
        alpha_epsilon: Dirichlet pseudo-count of the non-label classes (Milios et al., 2018).
        hyperparameter_points: The exact GP's few hyperparameters are fitted on a random subset of at most this
            many training points (one O(p^3) eigendecomposition, then O(c p r^2) per step, r the rows of the
            largest class); the posterior uses all N (one O(N^3) eigendecomposition whatever c).
    """

    # A stored config from before the joint solver loads with the per-class problems it was fitted with.
    _LEGACY: ClassVar[Mapping[str, Any]] = {"multiclass": MKLMulticlass.ONE_VS_REST, "basis_rank": None}

    kernel: KernelKind = KernelKind.RBF
    features: KernelFeatures = KernelFeatures.LATENT
    formulation: MKLFormulation = MKLFormulation.LANCKRIET
    multiclass: MKLMulticlass = MKLMulticlass.JOINT
    basis_rank: int | None = 48
    svm_c: float = 1.0
    max_exact_points: int = 3000
    num_inducing: int = 256
    gp_steps: int = 100
    posterior_samples: int = 64
    factor_rank: int = 48
    learning_rate: float = 0.1
    alpha_epsilon: float = 0.01
    hyperparameter_points: int = 512

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernel", parse_option(self.kernel, KernelKind, name="kernel"))
        object.__setattr__(self, "features", parse_option(self.features, KernelFeatures, name="kernel features"))
        object.__setattr__(self, "formulation", parse_option(self.formulation, MKLFormulation, name="MKL formulation"))
        object.__setattr__(self, "multiclass", parse_option(self.multiclass, MKLMulticlass, name="MKL multi-class"))
        if self.basis_rank is not None and not (isinstance(self.basis_rank, int) and self.basis_rank > 0):
            raise ConfigError(
                "GPMKLConfig.basis_rank must be a positive integer, or None for no projection; "
                f"got {self.basis_rank!r}."
            )
        _check_positive(
            "GPMKLConfig",
            svm_c=self.svm_c,
            max_exact_points=self.max_exact_points,
            num_inducing=self.num_inducing,
            gp_steps=self.gp_steps,
            posterior_samples=self.posterior_samples,
            factor_rank=self.factor_rank,
            learning_rate=self.learning_rate,
            alpha_epsilon=self.alpha_epsilon,
            hyperparameter_points=self.hyperparameter_points,
        )


@dataclass(frozen=True)
class EvidentialConfig(_JSONConfig):
    """The evidential kinds ``tmc`` and ``rcml`` (used when ``FusionConfig.model`` is one of them).

    Attributes:
        features: Evidence networks on the jWAE latents (encoders trained jointly with the jWAE loss, like every
            other kind's first stage) or on the standardised inputs (the papers' setting; no jWAE).
        evidence: The non-negative map from network outputs to evidence (softplus in both papers' code).
        hidden_dim: Hidden width of the evidence networks; 0 makes each a linear map (TMC's choice on
            Handwritten). On latents the encoder already gives the nonlinearity.
        annealing_epochs: Epochs T over which the KL weight min(1, t / T) rises; ``None`` takes the kind's own:
            10 for ``tmc`` (Han et al., 2021: min(1, t/10)) and 50 for ``rcml`` (its authors' released setting).
        conflict_weight: ``rcml`` only: weight of the conflictive-degree term between views in the loss.
    """

    features: EvidentialFeatures = EvidentialFeatures.LATENT
    evidence: EvidenceFunction = EvidenceFunction.SOFTPLUS
    hidden_dim: int = 0
    annealing_epochs: int | None = None
    conflict_weight: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", parse_option(self.features, EvidentialFeatures, name="features"))
        object.__setattr__(self, "evidence", parse_option(self.evidence, EvidenceFunction, name="evidence"))
        _check_non_negative("EvidentialConfig", hidden_dim=self.hidden_dim, conflict_weight=self.conflict_weight)
        if self.annealing_epochs is not None:
            _check_positive("EvidentialConfig", annealing_epochs=self.annealing_epochs)

    def annealing_for(self, kind: FusionKind) -> int:
        """The annealing length T of ``kind`` (``annealing_epochs``, or the kind's paper default)."""
        if self.annealing_epochs is not None:
            return self.annealing_epochs
        return 50 if kind is FusionKind.RCML else 10


@dataclass(frozen=True)
class RunConfig(_JSONConfig):
    """Everything that decides a run's result.

    Attributes:
        data: Data, modalities and split.
        jwae: Encoders, decoders and the jWAE loss.
        fusion: Fusion layer and head.
        train: Optimisation.
        bayes: The Bayesian rank-factor stage (rank prior ``gaussian`` or ``ard``).
        gp: The GP + MKL baseline (model ``gp-mkl``).
        evidential: The evidential kinds (models ``tmc`` and ``rcml``); runs stored before it load the defaults.
        seed: Seed of every random choice (split, initialisation, minibatches, projections).
        device: Where to compute; results are recorded, not the device.
    """

    data: DataConfig = field(default_factory=DataConfig)
    jwae: JWAEConfig = field(default_factory=JWAEConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    bayes: BayesConfig = field(default_factory=BayesConfig)
    gp: GPMKLConfig = field(default_factory=GPMKLConfig)
    evidential: EvidentialConfig = field(default_factory=EvidentialConfig)
    seed: int = 0
    device: DeviceKind = DeviceKind.AUTO

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", parse_option(self.device, DeviceKind, name="device"))
        _check_seed("RunConfig", self.seed)
        if self.fusion.input_linear and not self.fusion.accepts_input_linear(self.bayes):
            frozen = "train_encoders=False" if self.bayes.train_encoders is False else "its second stage"
            raise ConfigError(
                "FusionConfig.input_linear with a rank prior needs the SVI head trained end to end; inference "
                f"{self.bayes.inference.value!r} fits the head on frozen latents ({frozen}). Drop input_linear, or "
                "use inference 'svi' with the encoders trained (the default)."
            )
        # The sizes the config alone sets (rank, widths, samples), on the smallest data: arithmetic only.
        check_model_size(self, {"input": 1}, 2, 2)


@dataclass(frozen=True)
class EvaluationConfig(_JSONConfig):
    """What ``probfusion evaluate`` does to a run: one attack or one shift, over a grid of budgets or severities.

    Inputs are the run's standardised features, so every budget is in units of each feature's training
    standard deviation (an L-inf eps of 0.1 moves each attacked feature by at most a tenth of its training
    standard deviation).

    Attributes:
        attack: The attack (``none`` scores clean inputs only).
        eps: Attack budgets in units of each feature's training standard deviation, sorted.
        steps: PGD steps per start.
        step_size: PGD step length as a multiple of eps; ``None`` takes Madry et al.'s 2.5 / steps.
        restarts: PGD random starts per input; the highest-loss one is kept.
        norm: The budget's norm (``linf`` or ``l2``).
        modality: A modality name, ``all`` (all modalities attacked together), or ``each`` (every modality
            alone, then all together).
        shift: A distribution shift to evaluate instead of an attack (``None``: no shift).
        severities: Shift severities, integers from 1 to 5.
        samples: Posterior draws used to score the predictive (independent of the attack's draws).
        attack_samples: Fresh posterior draws per EOT-PGD step.
        mi_weight: Weight lambda of the mutual information in the adaptive attack's loss (NLL - lambda MI);
            0 skips the adaptive attack.
        coverage: Selective prediction: the share of the run's validation rows answered at the entropy threshold
            that every row's ``accuracy_at_coverage`` uses (as ``probfusion predict`` flags rows).
        seed: Seed of the attacks' random starts, the shifts' noise and the posterior draws.
        conflict_sigma: Shift ``conflict``: noise standard deviation as a share of each feature's training range
            (RCML: 0.5 on inputs min-max scaled to [0, 1]); see :mod:`probfusion.robustness.conflict`.
        conflict_noise_share: Shift ``conflict``: share of test rows given noise at severity 3 (RCML: 0.1);
            severity s scales it by s / 3.
        conflict_swap_share: Shift ``conflict``: share of test rows with one modality taken from a row of
            another class at severity 3 (RCML: 0.4); severity s scales it by s / 3.
    """

    attack: AttackKind = AttackKind.PGD
    eps: tuple[float, ...] = (0.05, 0.1, 0.2)
    steps: int = 10
    step_size: float | None = None
    restarts: int = 1
    norm: NormKind = NormKind.LINF
    modality: str = "each"
    shift: ShiftKind | None = None
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    samples: int = 64
    attack_samples: int = 8
    mi_weight: float = 1.0
    coverage: float = 0.95
    seed: int = 0
    conflict_sigma: float = 0.5
    conflict_noise_share: float = 0.1
    conflict_swap_share: float = 0.4

    def __post_init__(self) -> None:
        object.__setattr__(self, "attack", parse_option(self.attack, AttackKind, name="attack"))
        object.__setattr__(self, "norm", parse_option(self.norm, NormKind, name="norm"))
        if self.shift is not None:
            object.__setattr__(self, "shift", parse_option(self.shift, ShiftKind, name="shift"))
        object.__setattr__(self, "eps", parse_budgets(self.eps))
        _check_positive(
            "EvaluationConfig",
            steps=self.steps,
            step_size=2.5 if self.step_size is None else self.step_size,
            restarts=self.restarts,
            samples=self.samples,
            attack_samples=self.attack_samples,
        )
        _check_non_negative("EvaluationConfig", mi_weight=self.mi_weight)
        # Each of these multiplies the work and the (s, n, c) tensors of every scored row: bound them.
        for key, most in (("steps", 10_000), ("restarts", 100), ("samples", 10_000), ("attack_samples", 1_000)):
            if getattr(self, key) > most:
                raise ConfigError(f"EvaluationConfig.{key} must be at most {most:,}; got {getattr(self, key):,}.")
        _check_seed("EvaluationConfig", self.seed)
        if not 0.0 < self.coverage <= 1.0:
            raise ConfigError(f"EvaluationConfig.coverage must lie in (0, 1]; got {self.coverage}.")
        severities = tuple(self.severities)
        if not severities or any(isinstance(s, bool) or s not in (1, 2, 3, 4, 5) for s in severities):
            raise ConfigError(f"EvaluationConfig.severities must be integers from 1 to 5; got {list(severities)}.")
        object.__setattr__(self, "severities", tuple(sorted(set(severities))))
        _check_positive("EvaluationConfig", conflict_sigma=self.conflict_sigma)
        for key in ("conflict_noise_share", "conflict_swap_share"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"EvaluationConfig.{key} must lie in [0, 1]; got {getattr(self, key)}.")
        worst = (self.conflict_noise_share + self.conflict_swap_share) * max(self.severities) / 3
        if self.shift is ShiftKind.CONFLICT and worst > 1.0 + 1e-9:
            raise ConfigError(
                f"Conflict shares {self.conflict_noise_share} + {self.conflict_swap_share}, scaled by severity "
                f"{max(self.severities)} / 3, cover {worst:.0%} of the rows; lower the shares or the severities."
            )
        if not isinstance(self.modality, str) or not self.modality.strip():
            raise ConfigError(
                f"EvaluationConfig.modality must be a modality name, 'all' or 'each'; got {self.modality!r}."
            )


# The data-scaled defaults: one rule per field left ``None``, applied by resolve_config.
_BASE_EPOCHS = 60  # the least epoch budget (the fixed default before data-scaled training lengths)
_MAX_EPOCHS = 1000
_BASE_PATIENCE = 15
_BASE_RANK, _MAX_RANK = 16, 128  # the same for every rank prior: ARD prunes from it
_BASE_LATENT, _MAX_LATENT = 16, 64
_BASE_HIDDEN = 64
_BASE_FUSED = 32


# The fields :func:`resolve_config` sets from the data when they are left ``None``, by section of RunConfig.
DATA_SCALED_FIELDS: dict[str, tuple[str, ...]] = {
    "train": ("epochs", "patience", "weight_decay"),
    "jwae": ("latent_dim", "hidden_dim"),
    "fusion": ("rank", "fused_dim", "input_linear", "linear_pool"),
}


def data_scaled_values(config: RunConfig) -> dict[str, int | float | None]:
    """``{field: value}`` of the :data:`DATA_SCALED_FIELDS` in ``config`` (``None`` where left to the rules)."""
    return {
        name: getattr(getattr(config, section), name) for section, names in DATA_SCALED_FIELDS.items() for name in names
    }


def resolve_config(
    config: RunConfig, *, input_dims: Mapping[str, int], num_classes: int, num_train: int, streaming: bool = False
) -> RunConfig:
    """Return ``config`` with every field left ``None`` set by its data-scaled rule.

    The rules (n training rows, c classes, batch size b). The training length and the rank were measured on
    real multi-view sets (``studies/real_benchmark.py``; its ``NOTES.md`` has the ablations); the class-scaled
    widths follow from the model and equal the earlier fixed values up to 16 classes, so those sets do not
    test them:

    * ``train.epochs = clip(ceil(min_steps / ceil(n / b)), 60, 1000)``: at least ``min_steps`` optimizer steps,
      so a 400-row training set is not stopped after a few hundred;
    * ``train.patience = max(15, epochs // 10)``, scaled with the epoch budget;
    * ``train.weight_decay = weight_decay_rows / n`` (0.5 / n): 1e-3 at 500 rows, 1e-4 at 5,000; measured against
      the fixed 1e-4 on the real sets (``studies/results/real_benchmark/NOTES.md`` §12);
    * ``jwae.latent_dim = clip(c, 16, 64)`` and ``jwae.hidden_dim = max(64, 2 * latent_dim)``: a latent narrower
      than c - 1 caps the rank of a view's class logits;
    * ``fusion.rank = clip(c, 16, 128)`` whatever the rank prior: ARD prunes from it, the deterministic and
      Bayesian models of one data set compare at the same maximum rank, and the Bayesian head's logits
      (``Theta`` is c x r) are not capped below rank c;
    * ``fusion.fused_dim = max(32, c)``: the head's logits have rank at most h;
    * ``fusion.input_linear``: off (the pool below brings the logistic regression in instead; NOTES.md §28);
    * ``fusion.linear_pool``: on for lmf (with or without a rank prior), tfn and concat when the training rows are
      in memory (``streaming`` false), else off: the regression is fitted on all of them at once (NOTES.md §20-21).

    Explicit values are kept. The CLI and the API both call this (through :func:`probfusion.api.fit`), so one
    intent gives one model; the resolved values are recorded in the run's ``config.json`` and metrics.

    Args:
        config: The configuration as given.
        input_dims: ``{m: d_m}`` of the training data.
        num_classes: Number of classes c.
        num_train: Number of training rows n.
        streaming: Whether the training rows are streamed from a folder source.

    Returns:
        A config in which no resolvable field is ``None``.

    Example:
        >>> c = resolve_config(RunConfig(), input_dims={"a": 8, "b": 3}, num_classes=10, num_train=1000)
        >>> c.train.epochs, c.train.patience, c.jwae.latent_dim, c.fusion.rank, c.fusion.fused_dim
        (188, 18, 16, 16, 32)
    """
    steps_per_epoch = max(1, math.ceil(num_train / config.train.batch_size))
    epochs = config.train.epochs
    if epochs is None:
        epochs = min(_MAX_EPOCHS, max(_BASE_EPOCHS, math.ceil(config.train.min_steps / steps_per_epoch)))
    patience = config.train.patience if config.train.patience is not None else max(_BASE_PATIENCE, epochs // 10)
    decay = config.train.weight_decay
    if decay is None:
        decay = config.train.weight_decay_rows / max(1, num_train)
    latent = config.jwae.latent_dim
    if latent is None:
        latent = min(_MAX_LATENT, max(_BASE_LATENT, num_classes))
    hidden = config.jwae.hidden_dim if config.jwae.hidden_dim is not None else max(_BASE_HIDDEN, 2 * latent)
    rank = config.fusion.rank
    if rank is None:
        rank = min(_MAX_RANK, max(_BASE_RANK, num_classes))
    fused = config.fusion.fused_dim if config.fusion.fused_dim is not None else max(_BASE_FUSED, num_classes)
    skip = bool(config.fusion.input_linear)  # None: off since NOTES.md §28
    pool = config.fusion.linear_pool
    if pool is None:
        pool = config.fusion.accepts_linear_pool() and not streaming
    return dataclasses.replace(
        config,
        train=dataclasses.replace(config.train, epochs=epochs, patience=patience, weight_decay=decay),
        jwae=dataclasses.replace(config.jwae, latent_dim=latent, hidden_dim=hidden),
        fusion=dataclasses.replace(config.fusion, rank=rank, fused_dim=fused, input_linear=skip, linear_pool=pool),
    )
