"""One registry of model kinds: how each is built, fitted (its stages) and loaded back.

Every kind lives in its own module of :mod:`probfusion.models` and declares one :class:`ModelSpec`;
:func:`probfusion.api.fit` and :func:`probfusion.api.load_run` only look the spec up (:func:`model_spec`) and run
it. A fit is always:

1. ``build`` the first-stage model and train it with :func:`~probfusion.inference.training.train_classifier`
   under the spec's ``objective`` (``None``: cross-entropy plus the jWAE loss). This stage trains the encoders,
   so every kind shares one encoder story.
2. Optionally a ``second_stage`` on the trained first stage (the Bayesian head, the GP): it returns the final
   predictor, its number of predictive draws and the metrics it adds to ``metrics.json``.

``load`` builds an empty final model for ``load_state_dict``. A new kind is one module with a ``SPEC``, one entry
in :data:`MODELS` and its member of :class:`~probfusion.options.FusionKind` (from which the CLI builds
``--model``).

The key of a config is ``config.fusion.model`` except for LMF under a Bayesian rank prior (``gaussian``/``ard``),
which is the ``bayes-lmf`` entry: the rank prior selects the Bayesian kind, as ``--rank-prior`` always has.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from probfusion.config import FusionConfig, RunConfig
from probfusion.errors import ConfigError
from probfusion.inference.data import TensorData
from probfusion.inference.training import Objective
from probfusion.options import RankPrior

__all__ = ["BAYES_LMF", "ModelSpec", "StageResult", "model_spec", "registered_kinds", "seeded"]

BAYES_LMF = "bayes-lmf"
"""Registry key of LMF with a Bayesian rank prior (``FusionConfig.rank_prior`` ``gaussian`` or ``ard``)."""

Builder = Callable[[RunConfig, Mapping[str, int], int], nn.Module]
Loader = Callable[[RunConfig, Mapping[str, int], int, int], nn.Module]


@dataclass(frozen=True, eq=False)
class StageResult:
    """What a second stage hands back.

    Attributes:
        model: The final predictor.
        posterior_samples: Predictive draws used to score it (1 for a point estimate).
        metrics: Entries it adds to ``metrics.json``.
    """

    model: nn.Module
    posterior_samples: int
    metrics: dict[str, Any] = field(default_factory=dict)


SecondStage = Callable[[RunConfig, nn.Module, Mapping[str, TensorData], int], StageResult]


@dataclass(frozen=True)
class ModelSpec:
    """How one model kind is built, fitted and loaded.

    Attributes:
        name: The registry key (``lmf``, ``tfn``, ``concat``, ``bayes-lmf``, ``gp-mkl``, ``tmc``, ``rcml``).
        summary: One line for docs and listings.
        build: ``(config, {m: d_m}, c) -> module``: the first-stage model, trained by ``train_classifier``.
            Called under a forked RNG seeded with ``config.seed`` (see :func:`seeded`).
        load: ``(config, {m: d_m}, c, n_train) -> module``: an empty final model for ``load_state_dict``.
        second_stage: ``(config, trained first stage, {split: TensorData}, c) -> StageResult``, or ``None``
            when the first stage is the final model.
        objective: ``(config, n_train) -> Objective`` for the first stage (n_train: training rows, which an ELBO
            per row divides by); ``None`` is cross-entropy plus the jWAE loss.
    """

    name: str
    summary: str
    build: Builder
    load: Loader
    second_stage: SecondStage | None = None
    objective: Callable[[RunConfig, int], Objective] | None = None


def seeded(builder: Builder) -> Loader:
    """A loader that builds like ``builder`` under a forked RNG seeded with ``config.seed`` (``n_train`` unused)."""

    def load(config: RunConfig, dims: Mapping[str, int], num_classes: int, num_train: int = 0) -> nn.Module:
        # Initialisation draws from the global RNG inside the modules; fork it so the caller's state is untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            return builder(config, dims, num_classes)

    return load


def _registry() -> dict[str, ModelSpec]:
    # Imported here: every kind module imports this one for ModelSpec.
    from probfusion.models import bayes_lmf, concat, gp_mkl, lmf, rcml, tfn, tmc

    specs = (lmf.SPEC, tfn.SPEC, concat.SPEC, bayes_lmf.SPEC, gp_mkl.SPEC, tmc.SPEC, rcml.SPEC)
    return {spec.name: spec for spec in specs}


_MODELS: dict[str, ModelSpec] = {}


def registered_kinds() -> Mapping[str, ModelSpec]:
    """``{key: spec}`` of every registered kind."""
    if not _MODELS:
        _MODELS.update(_registry())
    return dict(_MODELS)


def model_spec(fusion: FusionConfig | RunConfig) -> ModelSpec:
    """The spec of the kind that ``fusion`` (or a run config's ``fusion``) names.

    Raises:
        ConfigError: If no kind is registered under the key.

    Example:
        >>> from probfusion.config import FusionConfig
        >>> model_spec(FusionConfig(model="lmf", rank_prior="ard")).name
        'bayes-lmf'
    """
    fusion = fusion.fusion if isinstance(fusion, RunConfig) else fusion
    key = BAYES_LMF if fusion.rank_prior is not RankPrior.NONE else fusion.model.value
    kinds = registered_kinds()
    if key not in kinds:
        raise ConfigError(f"No model kind {key!r} is registered; expected one of {sorted(kinds)}.")
    return kinds[key]
