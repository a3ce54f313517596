"""Model kind ``bayes-lmf``: LMF with Bayesian rank factors (``--rank-prior gaussian`` or ``ard``).

Stage one trains the encoders and a deterministic head under cross-entropy plus the jWAE loss: Liu's LMF for SVI
and NUTS, the seed-form LMF itself (:class:`SeedFormFusion` then a linear map: the Bayesian head at one parameter
set) for Laplace, whose posterior is centred at those weights. Stage two freezes the encoders and fits the
posterior of the seed-form head (:func:`~probfusion.inference.svi.fit_bayesian_head`).

With ``bayes.train_encoders`` (the SVI default) there is one stage: the Bayesian classifier itself, its encoders
and guide trained together on the ELBO plus the jWAE loss and early stopped on the predictive's validation NLL
(:func:`~probfusion.inference.svi.elbo_objective`); the second stage only freezes and scores it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from torch import nn

from probfusion.config import RunConfig
from probfusion.fusion.bayesian_classifier import BayesianFusionClassifier
from probfusion.fusion.classifier import MultimodalClassifier
from probfusion.fusion.heads import ClassifierHead
from probfusion.fusion.seed_lmf import SeedFormFusion
from probfusion.inference.data import TensorData
from probfusion.inference.svi import elbo_objective, finish_end_to_end, fit_bayesian_head
from probfusion.inference.training import Objective, cross_entropy_objective
from probfusion.models._deterministic import build_classifier
from probfusion.models.registry import BAYES_LMF, ModelSpec, StageResult
from probfusion.options import HeadKind, InferenceKind, RankPrior
from probfusion.seeding import make_generator

__all__ = ["SPEC"]


def _end_to_end(config: RunConfig) -> bool:
    return config.bayes.end_to_end


def _build(
    config: RunConfig, dims: Mapping[str, int], num_classes: int
) -> MultimodalClassifier | BayesianFusionClassifier:
    """Stage one: the encoders with the seed-form head (Laplace) or with Liu's LMF (SVI, NUTS, as before).

    The seed-form head is r components then a linear map to the c logits; its weights become the posterior's mean.
    The logistic-regression pool (``fusion.linear_pool``) belongs to the final, Bayesian model, not to this stage.
    End to end (``bayes.train_encoders``): the Bayesian classifier, trainable encoders, the guide at its own start.
    """
    if _end_to_end(config):  # this model is the final one, so it keeps the pool's buffers
        model = BayesianFusionClassifier(
            input_dims=dims,
            num_classes=num_classes,
            jwae=config.jwae,
            fusion=config.fusion,
            bayes=config.bayes,
            rank_prior=config.fusion.rank_prior,
            train_encoders=True,
        )
        if model.guide is not None:  # the SVI route always builds one
            model.guide.initialise(generator=make_generator(config.seed))
        return model
    config = dataclasses.replace(config, fusion=dataclasses.replace(config.fusion, linear_pool=False))
    if config.bayes.inference is not InferenceKind.LAPLACE:
        return build_classifier(config, dims, num_classes)
    rank = int(config.fusion.rank)  # resolved before any build
    fusion = SeedFormFusion(input_dims=[int(config.jwae.latent_dim)] * len(dims), rank=rank)
    head = ClassifierHead(fused_dim=rank, num_classes=num_classes, kind=HeadKind.LINEAR)
    stage = dataclasses.replace(config.fusion, rank_prior=RankPrior.NONE)
    return MultimodalClassifier(
        input_dims=dims, num_classes=num_classes, jwae=config.jwae, fusion=stage, layers=(fusion, head)
    )


def _load(config: RunConfig, dims: Mapping[str, int], num_classes: int, num_train: int = 0) -> nn.Module:
    return BayesianFusionClassifier(
        input_dims=dims,
        num_classes=num_classes,
        jwae=config.jwae,
        fusion=config.fusion,
        bayes=config.bayes,
        rank_prior=config.fusion.rank_prior,
    )


def _objective(config: RunConfig, num_train: int) -> Objective:
    return elbo_objective(num_train) if _end_to_end(config) else cross_entropy_objective


def _posterior(config: RunConfig, model: nn.Module, tensors: Mapping[str, TensorData], num_classes: int) -> StageResult:
    if isinstance(model, BayesianFusionClassifier) and _end_to_end(config):
        bayes = finish_end_to_end(model, tensors["train"], tensors["val"], bayes=config.bayes, seed=config.seed)
    elif not isinstance(model, MultimodalClassifier):  # the registry pairs this stage with build_classifier
        raise TypeError(f"bayes-lmf's second stage needs a MultimodalClassifier; got {type(model).__name__}.")
    else:
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
        laplace_prior_scale=bayes.laplace_scale,
        # Divergent transitions after warm-up (NUTS only; None for SVI): a nonzero count means biased draws.
        nuts_divergences=sum(bayes.divergences) if nuts else None,
        nuts_divergences_per_chain=list(bayes.divergences) if nuts else None,
    )
    return StageResult(bayes.model, config.bayes.posterior_samples, extra)


SPEC = ModelSpec(
    name=BAYES_LMF,
    summary="LMF whose rank factors have a Gaussian or ARD prior; posterior by SVI or NUTS on frozen encoders.",
    build=_build,
    load=_load,
    second_stage=_posterior,
    objective=_objective,
)
