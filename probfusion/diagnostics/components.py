"""Run-level component read-outs: attributions and removals for Bayesian and deterministic LMF runs.

Bayesian runs answer over posterior draws (shares on the reference training latents stored with the model);
a deterministic LMF answers with one draw (shares on a seeded random subset of up to 512 training rows: the
training split may be ordered by class, so its first rows would not be representative). TFN, concatenation and GP + MKL
have no rank components and raise a one-line :class:`~probfusion.errors.ConfigError`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from probfusion.api import LoadedRun
from probfusion.diagnostics._arviz import az
from probfusion.diagnostics.attribution import (
    Ablation,
    Attribution,
    ablation_from_draws,
    ablation_from_lmf,
    attribution_from_draws,
    attribution_from_lmf,
)
from probfusion.diagnostics.posterior import (
    PosteriorDraws,
    draw_posterior,
    resolve_run,
    split_inputs,
    split_latents,
)
from probfusion.errors import ConfigError
from probfusion.fusion.bayesian_classifier import REFERENCE_SIZE, BayesianFusionClassifier
from probfusion.fusion.classifier import MultimodalClassifier
from probfusion.fusion.lmf import LowRankFusion

__all__ = [
    "attribution_from_posterior",
    "component_ablation",
    "component_attributions",
    "has_components",
    "reference_rows",
]


def has_components(run: LoadedRun) -> bool:
    """Whether the run's model has LMF rank components (Bayesian head, or deterministic LMF)."""
    model = run.model
    return isinstance(model, BayesianFusionClassifier) or (
        isinstance(model, MultimodalClassifier) and isinstance(model.fusion, LowRankFusion)
    )


def _check(run: LoadedRun) -> None:
    if not has_components(run):
        raise ConfigError(
            f"{run.path} has no rank components (model {run.config.fusion.model.value!r}); attributions need an "
            "LMF run: `probfusion fit --model lmf` (deterministic) or `--rank-prior ard` (Bayesian)."
        )


def reference_rows(num_rows: int, seed: int = 0) -> Tensor:
    """Indices of up to :data:`REFERENCE_SIZE` rows drawn at random without replacement (all rows if fewer).

    Args:
        num_rows: Rows of the split.
        seed: Seed of the draw.

    Returns:
        A `(min(num_rows, REFERENCE_SIZE),)` index tensor.
    """
    return torch.randperm(num_rows, generator=torch.Generator().manual_seed(seed))[:REFERENCE_SIZE]


def attribution_from_posterior(idata: az.InferenceData) -> Attribution:
    """The attribution stored in :func:`~probfusion.diagnostics.posterior.posterior`'s ``InferenceData``.

    Its ``variance_share`` `(chain, draw, r)` and ``modality_share`` `(chain, draw, r, M)`, chains concatenated:
    the same numbers as :func:`component_attributions` on the same draws, without computing them again.
    """
    post = idata.posterior
    rank, modalities = post.sizes["component"], tuple(str(m) for m in post["modality"].values)
    component = torch.tensor(post["variance_share"].values).reshape(-1, rank)
    modality = torch.tensor(post["modality_share"].values).reshape(-1, rank, len(modalities))
    return Attribution(modalities, component, modality)


def component_attributions(run: LoadedRun | Path | str, *, num_draws: int | None = None, seed: int = 0) -> Attribution:
    """Per-component output shares and per-(component, modality) shares of a run.

    Args:
        run: A loaded LMF run or its directory.
        num_draws: Posterior draws of an SVI run (NUTS: its stored draws; deterministic: one).
        seed: Seed of the SVI draws, and of the deterministic run's reference rows (:func:`reference_rows`).

    Returns:
        The :class:`~probfusion.diagnostics.attribution.Attribution`.
    """
    run = resolve_run(run)
    _check(run)
    model = run.model
    if isinstance(model, BayesianFusionClassifier):
        draws = draw_posterior(run, num_draws=num_draws, seed=seed).flat()
        with torch.no_grad():
            return attribution_from_draws(list(model.reference_latents), draws, model.modalities)
    latents, _ = split_latents(run, "train")
    rows = reference_rows(latents[0].shape[0], seed).to(latents[0].device)
    return attribution_from_lmf([z[rows] for z in latents], model.fusion, model.modalities)


def component_ablation(
    run: LoadedRun | Path | str,
    *,
    split: str = "test",
    num_draws: int | None = None,
    seed: int = 0,
    draws: PosteriorDraws | None = None,
) -> Ablation:
    """Remove each component in turn and measure the change of the predictions on a split.

    Args:
        run: A loaded LMF run or its directory.
        split: ``train``, ``val`` or ``test``.
        num_draws: Posterior draws of an SVI run (NUTS: its stored draws).
        seed: Seed of the SVI draws.
        draws: Draws already made for this run (e.g. ``draws_from_posterior(idata)``); ``num_draws`` and
            ``seed`` are then unused.

    Returns:
        The :class:`~probfusion.diagnostics.attribution.Ablation`.
    """
    run = resolve_run(run)
    _check(run)
    latents, labels, offset = split_inputs(run, split)  # the input skip's logits stay when a component goes
    model = run.model
    if isinstance(model, BayesianFusionClassifier):
        drawn = draws if draws is not None else draw_posterior(run, num_draws=num_draws, seed=seed)
        return ablation_from_draws(latents, drawn.flat(), labels, offset)
    return ablation_from_lmf(latents, model.fusion, model.head, labels, offset)
