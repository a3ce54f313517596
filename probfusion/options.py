"""Option sets as ``str`` enums, shared by the library and the CLI so the two cannot disagree.

Every public function that takes one of these also accepts its string value (``"lmf"`` for
``FusionKind.LMF``); :func:`parse_option` converts and words the error when the value is unknown.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from probfusion.errors import ConfigError

__all__ = [
    "AlignmentKind",
    "AttackKind",
    "Calibration",
    "DeviceKind",
    "EvidenceFunction",
    "EvidentialFeatures",
    "FusionKind",
    "GuideKind",
    "HeadKind",
    "InferenceKind",
    "KernelFeatures",
    "KernelKind",
    "LMFInit",
    "LabelScheme",
    "MKLFormulation",
    "MKLMulticlass",
    "NUTSParameterisation",
    "PredictImputation",
    "PriorPenalty",
    "RankPrior",
    "ShiftKind",
    "SplitKind",
    "SyntheticLabels",
    "TuneSelection",
    "parse_option",
]


class FusionKind(StrEnum):
    """How the per-modality latents are fused."""

    LMF = "lmf"
    """Low-rank multimodal fusion (Liu et al., 2018): a CP-rank-r weight on the outer-product tensor."""
    TFN = "tfn"
    """Tensor fusion (Zadeh et al., 2017): a dense weight on the full outer-product tensor."""
    CONCAT = "concat"
    """Concatenation followed by a linear layer: additive (early) fusion, the simplest baseline."""
    GP_MKL = "gp-mkl"
    """Gaussian-process classifier on a fixed sum of per-modality kernels weighted by an MKL dual (additive)."""
    TMC = "tmc"
    """Trusted multi-view classification (Han et al., 2021): per-modality Dirichlet opinions, Dempster-Shafer."""
    RCML = "rcml"
    """Reliable conflictive multi-view learning (Xu et al., 2024): averaged evidence, a conflict-degree loss."""


class Calibration(StrEnum):
    """How the first stage's validation predictive is read: for early stopping, and to recalibrate at the end."""

    TEMPERATURE = "temperature"
    """Early stopping on the validation NLL after temperature scaling (T >= 1), and the deterministic model's
    logits divided by the T fitted on the validation rows at the best epoch (:mod:`probfusion.metrics.temperature`)."""
    NONE = "none"
    """Early stopping on the raw validation NLL; no recalibration."""


class HeadKind(StrEnum):
    """The classifier head after the fusion layer."""

    MLP = "mlp"
    """ReLU, then a linear map to the class logits: a nonlinear head (with concatenation fusion, an MLP)."""
    LINEAR = "linear"
    """A linear map to the class logits: with concatenation fusion the logits are additive in the modalities."""


class LMFInit(StrEnum):
    """How the deterministic LMF factors are initialised."""

    ADDITIVE = "additive"
    """Each factor's constant coordinate is 1 and the rest small: every component starts as a sum of unimodal
    linear terms (late fusion) with small interactions, whatever the number of modalities."""
    RANDOM = "random"
    """Every entry random, scaled so the fused output has unit variance: the interactions dominate at start."""


class RankPrior(StrEnum):
    """Prior on the LMF rank factors."""

    NONE = "none"
    """Point-estimate (deterministic) factors."""
    GAUSSIAN = "gaussian"
    """Bayesian factors with a fixed isotropic Gaussian prior."""
    ARD = "ard"
    """Bayesian factors whose per-component precision has a Gamma prior (automatic relevance determination)."""


class InferenceKind(StrEnum):
    """How the posterior of the Bayesian rank factors is approximated."""

    SVI = "svi"
    """Stochastic variational inference (Pyro) with a guide fit for the model."""
    NUTS = "nuts"
    """The No-U-Turn sampler on the fusion head with frozen encoders: the gold standard for small problems."""
    LAPLACE = "laplace"
    """A Gaussian at the MAP (GGN curvature, one block per component), ARD precisions by alternating updates."""


class NUTSParameterisation(StrEnum):
    """How NUTS sees the ARD factors ``w ~ N(0, lambda^-1)`` under ``lambda ~ Gamma(a0, b0)``."""

    CENTRED = "centred"
    """Sample ``w`` itself: Neal's funnel (the scale of ``w`` moves with ``lambda``), divergent where ARD prunes."""
    NON_CENTRED = "non-centred"
    """Sample ``eps ~ N(0, I)`` and set ``w = lambda^(-1/2) eps`` (Pyro's ``LocScaleReparam(0)``): no funnel."""


class GuideKind(StrEnum):
    """Variational family of the SVI posterior."""

    MEAN_FIELD = "mean-field"
    """Independent Normal factors and log-normal (or Gamma) precisions."""
    LOW_RANK = "low-rank"
    """A multivariate Normal with low-rank-plus-diagonal covariance over all latent variables."""


class KernelKind(StrEnum):
    """Per-modality kernel of the GP + MKL baseline."""

    RBF = "rbf"
    """Gaussian RBF kernel with a median-heuristic bandwidth."""
    LINEAR = "linear"
    """Linear kernel."""


class KernelFeatures(StrEnum):
    """What the per-modality kernels of the GP + MKL baseline are computed on."""

    LATENT = "latent"
    """The jWAE latents z_m (the same latents that LMF fuses)."""
    INPUT = "input"
    """The standardised inputs x_m."""


class EvidentialFeatures(StrEnum):
    """What the per-modality evidence networks of ``tmc`` and ``rcml`` read."""

    LATENT = "latent"
    """The jWAE latents z_m, with the encoders trained jointly with the jWAE loss (every kind's encoder story)."""
    INPUT = "input"
    """The standardised inputs x_m, as in the papers; no encoders and no jWAE loss."""


class EvidenceFunction(StrEnum):
    """The map from an evidence network's outputs to non-negative evidence e_m."""

    SOFTPLUS = "softplus"
    """``log(1 + exp(.))``: smooth, never exactly zero gradients (the papers' released choice)."""
    RELU = "relu"
    """``max(0, .)``: exact zeros (and zero gradients) for negative outputs."""
    EXP = "exp"
    """``exp(.)`` (clamped at exp(10)): evidence grows fastest; can overflow without the clamp."""


class MKLFormulation(StrEnum):
    """Which convex problem sets the kernel weights."""

    LANCKRIET = "lanckriet"
    """The QCQP dual of Lanckriet et al. (2004), solved through low-rank kernel factors as cone constraints."""
    ALIGNMENT = "alignment"
    """Centred kernel-target alignment (a cheaper QP for large n)."""


class MKLMulticlass(StrEnum):
    """How the Lanckriet MKL problem treats more than two classes (two classes are always one binary problem)."""

    JOINT = "joint"
    """One convex problem for all classes: the one-vs-rest SVM duals coupled through one set of kernel weights."""
    ONE_VS_REST = "one-vs-rest"
    """One binary problem per class, solved separately, weights averaged (the earlier behaviour; for comparison)."""


class AttackKind(StrEnum):
    """Adversarial attack in input space."""

    NONE = "none"
    """No attack (clean inputs)."""
    FGSM = "fgsm"
    """Fast gradient sign method: one step of size epsilon."""
    PGD = "pgd"
    """Projected gradient descent with a random start, keeping the highest-loss iterate."""
    EOT_PGD = "eot-pgd"
    """PGD with gradients averaged over posterior samples (expectation over transformation)."""


class ShiftKind(StrEnum):
    """Distribution shift applied to test inputs."""

    NOISE = "noise"
    """Additive Gaussian noise at severities 1..5."""
    DROPOUT = "dropout"
    """Feature dropout (features set to their training mean) at severities 1..5."""
    MISSING = "missing"
    """One modality missing (mean-imputed)."""
    SPEAKER = "speaker"
    """av-digits' held-out speaker: a real shift."""
    CONFLICT = "conflict"
    """RCML's conflictive rows: noise on some modalities of some rows, one modality of others from another class."""


class PriorPenalty(StrEnum):
    """Divergence between the aggregate posterior q(z_m) and the N(0, I) prior in the jWAE loss."""

    SWD = "swd"
    """Sliced Wasserstein distance (POT), differentiable in torch."""
    MMD = "mmd"
    """Maximum mean discrepancy with an inverse-multiquadratic kernel (Tolstikhin et al., 2018)."""
    NONE = "none"
    """No prior penalty: a plain (joint) autoencoder."""


class AlignmentKind(StrEnum):
    """How the paired latents of one sample are pulled together in the jWAE loss."""

    PAIRED = "paired"
    """Mean squared distance between the latents of each pair of modalities of one sample."""
    CROSS = "cross"
    """Cross-reconstruction: decode modality m' from the latent of modality m."""
    NONE = "none"
    """No alignment term."""


class SplitKind(StrEnum):
    """How a dataset is divided into train, validation and test sets."""

    AUTO = "auto"
    """The split shipped with the data if it has one (``predefined``), else ``random``."""
    RANDOM = "random"
    """Stratified random split; exact duplicates stay on one side."""
    SPEAKER = "speaker"
    """av-digits only: test on one held-out speaker, train and validate on the others (a real shift)."""
    PREDEFINED = "predefined"
    """The split shipped with the data (user ``.npz`` with a ``split`` array, MultiBench pickles)."""


class TuneSelection(StrEnum):
    """Which trial ``probfusion tune`` hands back as ``best/``."""

    GUARDED = "guarded"
    """The lowest validation NLL only if it beats trial 0 (the defaults) by more than ``TuneConfig.guard_z``
    standard errors of the paired per-row difference; otherwise trial 0."""
    LOWEST = "lowest"
    """The lowest validation NLL, however small the margin."""


class SyntheticLabels(StrEnum):
    """How the ``synthetic`` dataset turns its planted class scores s into labels."""

    ARGMAX = "argmax"
    """``y = argmax_k (s_k + noise * N(0, 1))``: a probit link, so the Bayes-optimal logit is a nonlinear
    function of s and has a higher CP rank than the planted one."""
    SOFTMAX = "softmax"
    """``y ~ Categorical(softmax(s / noise))``: the model's own likelihood, so the Bayes-optimal logit is the
    planted interaction itself (over the temperature ``noise``), of CP rank exactly r*."""


class LabelScheme(StrEnum):
    """How a continuous sentiment score (CMU-MOSI, in [-3, 3]) becomes class labels."""

    BINARY = "binary"
    """Negative (score < 0) versus non-negative (score >= 0), MultiBench's convention."""
    SEVEN_CLASS = "7class"
    """The score clipped to [-3, 3] and rounded to the nearest integer: seven classes."""


class PredictImputation(StrEnum):
    """How ``probfusion predict`` treats a modality absent from a row."""

    MARGINAL = "marginal"
    """Average the predictive over training rows of the absent modality (its training marginal)."""
    MEAN = "mean"
    """Put the absent modality at its training mean."""


class DeviceKind(StrEnum):
    """Where tensors live."""

    AUTO = "auto"
    """CUDA when available, else the CPU."""
    CPU = "cpu"
    """The CPU."""
    CUDA = "cuda"
    """The first CUDA device; an error when none is available."""


E = TypeVar("E", bound=StrEnum)


def parse_option(value: E | str, enum: type[E], *, name: str) -> E:
    """Convert ``value`` to a member of ``enum``, with an error that lists the valid choices.

    Args:
        value: A member of ``enum`` or its string value.
        enum: The option set.
        name: The option's name, used in the error message.

    Returns:
        The enum member.

    Raises:
        ConfigError: If ``value`` is not one of the enum's values.

    Example:
        >>> parse_option("lmf", FusionKind, name="model")
        <FusionKind.LMF: 'lmf'>
    """
    if isinstance(value, enum):
        return value
    try:
        return enum(str(value).lower())
    except ValueError:
        choices = ", ".join(member.value for member in enum)
        raise ConfigError(f"Unknown {name} {value!r}; expected one of: {choices}.") from None
