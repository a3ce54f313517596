"""Build, objective and spec shared by the evidential kinds ``tmc`` and ``rcml``.

One stage: the evidential classifier is the final model. On latent features its encoders train jointly with the
jWAE loss (like every other kind's first stage: supervised term plus jWAE); on input features there are no
encoders and the jWAE term is zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from probfusion._shapes import Views
from probfusion.config import RunConfig
from probfusion.encoders.jwae import JWAELoss
from probfusion.fusion.evidential import Combination, EvidentialClassifier
from probfusion.inference.evidential_loss import annealing_weight, rcml_loss, tmc_loss
from probfusion.inference.training import Objective
from probfusion.models.registry import ModelSpec, seeded
from probfusion.options import FusionKind

__all__ = ["evidential_spec"]

_RULES = {FusionKind.TMC: Combination.DEMPSTER_SHAFER, FusionKind.RCML: Combination.AVERAGE}


def _builder(kind: FusionKind) -> Callable[[RunConfig, Mapping[str, int], int], nn.Module]:
    def build(config: RunConfig, dims: Mapping[str, int], num_classes: int) -> nn.Module:
        return EvidentialClassifier(
            input_dims=dims,
            num_classes=num_classes,
            jwae=config.jwae,
            evidential=config.evidential,
            combination=_RULES[kind],
        )

    return build


def _objective(kind: FusionKind) -> Callable[[RunConfig, int], Objective]:
    def make(config: RunConfig, num_train: int) -> Objective:  # the evidential losses are batch means already
        settings = config.evidential
        annealing = settings.annealing_for(kind)

        def objective(
            model: nn.Module, views: Views, labels: Tensor, *, epoch: int, generator: torch.Generator
        ) -> tuple[Tensor, JWAELoss]:
            if not isinstance(model, EvidentialClassifier):
                raise TypeError(
                    f"The {kind.value} objective needs an EvidentialClassifier; got {type(model).__name__}."
                )
            out = model.opinions(views)
            weight = annealing_weight(epoch, annealing)
            if kind is FusionKind.TMC:
                loss = tmc_loss(out.view_alpha, out.alpha, labels, kl_weight=weight)
            else:
                loss = rcml_loss(
                    out.view_alpha, out.alpha, labels, kl_weight=weight, conflict_weight=settings.conflict_weight
                )
            if model.jwae is None:
                zero = loss.new_zeros(())
                return loss, JWAELoss(total=zero, reconstruction=zero, prior=zero, alignment=zero)
            return loss, model.jwae.loss(views, out.latents, generator=generator)

        return objective

    return make


def evidential_spec(kind: FusionKind, summary: str) -> ModelSpec:
    """The one-stage spec of ``tmc`` or ``rcml``."""
    build = _builder(kind)
    return ModelSpec(name=kind.value, summary=summary, build=build, load=seeded(build), objective=_objective(kind))
