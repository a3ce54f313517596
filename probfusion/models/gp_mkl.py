"""Model kind ``gp-mkl``: a GP classifier on an MKL-weighted sum of per-modality kernels (additive fusion).

Stage one is LMF at the same rank, so the GP sees exactly the latents of the LMF run with the same seed: the two
are compared on the same latents, as the design asks. Stage two solves the MKL dual and fits the GP on the
frozen encoders' latents (or on the standardised inputs, ``GPMKLConfig.features``). cvxpy and GPyTorch are
imported only when a GP run needs them (about 2 s of imports).
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from probfusion.config import RunConfig
from probfusion.fusion.classifier import MultimodalClassifier
from probfusion.inference.data import TensorData
from probfusion.models._deterministic import build_classifier
from probfusion.models.registry import ModelSpec, StageResult
from probfusion.options import FusionKind, KernelFeatures

__all__ = ["SPEC"]


def _build(config: RunConfig, dims: Mapping[str, int], num_classes: int) -> nn.Module:
    return build_classifier(config, dims, num_classes, fusion=FusionKind.LMF)


def _load(config: RunConfig, dims: Mapping[str, int], num_classes: int, num_train: int = 0) -> nn.Module:
    from probfusion.baselines.gp import GPMKLClassifier

    return GPMKLClassifier(
        input_dims=dims, num_classes=num_classes, num_train=num_train, jwae=config.jwae, config=config.gp
    )


def _gp(config: RunConfig, model: nn.Module, tensors: Mapping[str, TensorData], num_classes: int) -> StageResult:
    from probfusion.baselines.gp_fit import fit_gp_mkl

    if not isinstance(model, MultimodalClassifier):  # the registry pairs this stage with build_classifier
        raise TypeError(f"gp-mkl's second stage needs a MultimodalClassifier; got {type(model).__name__}.")
    latent = config.gp.features is KernelFeatures.LATENT
    gp = fit_gp_mkl(
        tensors["train"],
        encoder=model.jwae if latent else None,
        config=config.gp,
        seed=config.seed,
        num_classes=num_classes,
    )
    extra = {
        "kernel_weights": gp.kernel_weights,
        "mkl_solver_status": gp.solver_status,
        "mkl_solver_seconds": gp.solver_seconds,
        "gp_fit_seconds": gp.fit_seconds,
    }
    return StageResult(gp.model, config.gp.posterior_samples, extra)


SPEC = ModelSpec(
    name=FusionKind.GP_MKL.value,
    summary="GP classifier on a fixed MKL-weighted kernel sum, on the latents of an LMF first stage.",
    build=_build,
    load=_load,
    second_stage=_gp,
)
