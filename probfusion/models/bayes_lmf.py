"""Model kind ``bayes-lmf``: LMF with Bayesian rank factors (``--rank-prior gaussian`` or ``ard``).

Stage one trains the deterministic LMF (encoders, factors, head) with cross-entropy plus the jWAE loss; stage
two freezes the encoders and fits the posterior of the seed-form LMF head by SVI or NUTS
(:func:`~probfusion.inference.svi.fit_bayesian_head`).
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from probfusion.config import RunConfig
from probfusion.fusion.bayesian_classifier import BayesianFusionClassifier
from probfusion.fusion.classifier import MultimodalClassifier
from probfusion.inference.data import TensorData
from probfusion.inference.svi import fit_bayesian_head
from probfusion.models._deterministic import build_classifier
from probfusion.models.registry import BAYES_LMF, ModelSpec, StageResult
from probfusion.options import InferenceKind
from probfusion.seeding import make_generator

__all__ = ["SPEC"]


def _load(config: RunConfig, dims: Mapping[str, int], num_classes: int, num_train: int = 0) -> nn.Module:
    return BayesianFusionClassifier(
        input_dims=dims,
        num_classes=num_classes,
        jwae=config.jwae,
        fusion=config.fusion,
        bayes=config.bayes,
        rank_prior=config.fusion.rank_prior,
    )


def _posterior(config: RunConfig, model: nn.Module, tensors: Mapping[str, TensorData], num_classes: int) -> StageResult:
    if not isinstance(model, MultimodalClassifier):  # the registry pairs this stage with build_classifier
        raise TypeError(f"bayes-lmf's second stage needs a MultimodalClassifier; got {type(model).__name__}.")
    bayes = fit_bayesian_head(
        model,
        tensors["train"],
        tensors["val"],
        fusion=config.fusion,
        bayes=config.bayes,
        rank_prior=config.fusion.rank_prior,
        seed=config.seed,
    )
    nuts = config.bayes.inference is InferenceKind.NUTS
    summary = bayes.model.rank_summary(config.bayes.posterior_samples, make_generator(config.seed))
    extra = {
        key: summary[key]
        for key in ("effective_rank", "effective_rank_interval", "components", "effective_rank_distribution")
    }
    extra.update(
        max_rank=config.fusion.rank,
        inference=config.bayes.inference.value,
        elbo_final=bayes.elbo[-1] if bayes.elbo else None,
        bayes_seconds=bayes.seconds,
        # Divergent transitions after warm-up (NUTS only; None for SVI): a nonzero count means biased draws.
        nuts_divergences=sum(bayes.divergences) if nuts else None,
        nuts_divergences_per_chain=list(bayes.divergences) if nuts else None,
    )
    return StageResult(bayes.model, config.bayes.posterior_samples, extra)


SPEC = ModelSpec(
    name=BAYES_LMF,
    summary="LMF whose rank factors have a Gaussian or ARD prior; posterior by SVI or NUTS on frozen encoders.",
    build=build_classifier,
    load=_load,
    second_stage=_posterior,
)
