r"""Stochastic variational inference for the Bayesian LMF head, with periodic function-preserving re-expression.

:func:`fit_svi` maximises the ELBO of :class:`~probfusion.fusion.bayesian_lmf.BayesianLowRankFusion` under a
:class:`~probfusion.fusion.bayesian_lmf.HeadGuide` with minibatches (the model's plate scales each batch by
N / n), using Pyro's ``Trace_ELBO().differentiable_loss`` and a torch Adam over the guide's parameters (no
global Pyro parameter store).

Why the re-expression: under a mean-field guide, rank components settle as redundant copies of one another
(each explains part of the same CP term) and ARD keeps 4-8 of them "active" when the truth is 2, however long it
trains. Every ``realign_every`` steps (during the first ``realign_until`` share of the run) the guide's means are
re-expressed with the fewest components that reproduce the head's weight tensor to ``realign_tolerance``
(:func:`~probfusion.fusion.rank.reexpress_components`: SVD for M = 2, CP-ALS for M >= 3); the freed components
restart near zero, where ARD prunes them unless the data need them, and Adam's moments restart.

:func:`fit_bayesian_head` is the entry point of both routes (SVI and NUTS) for a trained classifier.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from pyro.infer import Trace_ELBO
from torch import Tensor

from probfusion.config import BayesConfig, FusionConfig
from probfusion.errors import ConfigError
from probfusion.fusion.bayesian_classifier import REFERENCE_SIZE, BayesianFusionClassifier
from probfusion.fusion.bayesian_lmf import BayesianLowRankFusion, HeadGuide
from probfusion.fusion.classifier import MultimodalClassifier
from probfusion.fusion.rank import reexpress_components
from probfusion.inference.data import TensorData
from probfusion.inference.mcmc import run_nuts_head
from probfusion.inference.predictive import score_classifier
from probfusion.options import InferenceKind, RankPrior, parse_option

__all__ = ["BayesianFit", "SVIResult", "fit_bayesian_head", "fit_svi", "realign_guide"]


@dataclass(frozen=True)
class SVIResult:
    """Outcome of :func:`fit_svi`.

    Attributes:
        elbo: The ELBO estimate of every step (full-data scale, one particle).
        realignments: ``(step, components kept, relative error)`` of every re-expression.
        seconds: Wall time.
    """

    elbo: list[float]
    realignments: list[tuple[int, int, float]] = field(default_factory=list)
    seconds: float = 0.0


@torch.no_grad()
def realign_guide(
    guide: HeadGuide, *, tolerance: float, prior_mean: float = 1.0, generator: torch.Generator | None = None
) -> tuple[int, float]:
    """Re-express the guide's means with fewer components (function kept to ``tolerance``); free the rest.

    Kept components keep their posterior scales; freed ones restart at a tenth of the initial scale (small but
    not zero: zero factors are a saddle point the ELBO cannot leave). Kept components' precisions are reset to
    ``(number of weights) / (squared norm)``, the value their factors imply; freed ones to the prior mean
    a0 / b0, where a mean-field ARD posterior of an unused component settles.

    Returns:
        The number of components kept and the relative error of the re-expression.

    The low-rank guide's covariance factor is left as it is (it adapts within the next steps).
    """
    means = guide.means()
    names = sorted((n for n in means if n.startswith("factor_")), key=lambda n: int(n.split("_")[1]))
    result = reexpress_components([means[n] for n in names], means["theta"], tolerance=tolerance, generator=generator)
    k = result.rank
    fresh = {n: means[n].clone() for n in means}
    for n, factor in zip(names, result.factors, strict=True):
        fresh[n] = factor
    fresh["theta"] = result.theta
    rank = means["theta"].shape[1]
    if k < rank:
        num_factors = len(names) + 1
        for n in [*names, "theta"]:
            value = fresh[n] if n != "theta" else fresh[n].T
            std = 0.1 * math.sqrt(rank ** (-1.0 / num_factors) / value.shape[1])
            noise = torch.randn(value[k:].shape, generator=generator, dtype=value.dtype)
            value[k:] = std * noise.to(value.device)
    if "precision" in fresh:
        squares = sum(fresh[n].square().sum(-1) for n in names) + fresh["theta"].square().sum(0)
        count = sum(fresh[n].shape[-1] for n in names) + fresh["theta"].shape[0]
        implied = (count / squares.clamp_min(1e-12)).clamp(math.exp(-5.0), math.exp(10.0))
        implied[k:] = prior_mean
        fresh["precision"] = implied
    guide.loc.copy_(guide.pack(fresh))
    if k < rank:
        # Freed coordinates get the initial scale back; the layout is known from the guide's site shapes.
        init = guide.raw_scale.new_full((), math.log(math.expm1(0.02)))
        raw = {n: v[0].clone() for n, v in guide.unpack(guide.raw_scale.unsqueeze(0), constrain=False).items()}
        for n in [*names, "theta"]:
            if n == "theta":
                raw[n][:, k:] = init
            else:
                raw[n][k:] = init
        guide.raw_scale.copy_(guide.pack(raw, constrained=False))
    return k, result.relative_error


def fit_svi(
    model: BayesianLowRankFusion,
    guide: HeadGuide,
    latents: Sequence[Tensor],
    labels: Tensor,
    *,
    steps: int,
    learning_rate: float,
    batch_size: int,
    seed: int,
    realign_every: int = 0,
    realign_until: float = 0.8,
    realign_tolerance: float = 1e-2,
    progress: Callable[[int, int], None] | None = None,
) -> SVIResult:
    """Fit ``guide`` to the posterior of ``model`` on fixed latents by SVI (Adam on the one-particle ELBO).

    Args:
        model: The Bayesian head (the Pyro model).
        guide: Its variational family; initialised here from ``seed`` and trained in place.
        latents: M tensors of shape `(N, d_m)`, the frozen encoders' output on the training set.
        labels: An `(N,)` tensor of class labels.
        steps: Optimisation steps (one minibatch each).
        learning_rate: Adam learning rate.
        batch_size: Minibatch size n (the likelihood is scaled by N / n).
        seed: Seed of the initialisation, minibatch order and the ELBO's Monte Carlo draws.
        realign_every: Re-express the components every this many steps (0: never).
        realign_until: Stop re-expressing after this share of the steps.
        realign_tolerance: Relative error allowed by a re-expression.
        progress: Called with ``(steps done, steps total)`` every 50 steps and at the end.

    Returns:
        The ELBO history and the re-expressions made. Cost: O(steps n r (sum_m d_m + c)).
    """
    started = time.perf_counter()
    prior_mean = float(model.prior_shape / model.prior_rate)
    generator = torch.Generator().manual_seed(seed)
    guide.initialise(generator=generator)
    total = int(labels.shape[0])
    batch = min(batch_size, total)
    loss_fn = Trace_ELBO().differentiable_loss
    optimizer = torch.optim.Adam(guide.parameters(), lr=learning_rate)
    history: list[float] = []
    realignments: list[tuple[int, int, float]] = []
    order, cursor = torch.randperm(total, generator=generator), 0
    # Pyro draws from the global RNG: fork it so the caller's state is untouched, and seed it for this fit.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for step in range(1, steps + 1):
            if cursor + batch > total:
                order, cursor = torch.randperm(total, generator=generator), 0
            index = order[cursor : cursor + batch].to(labels.device)
            cursor += batch
            loss = loss_fn(model, guide, [z[index] for z in latents], labels[index], total_size=total)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            history.append(-float(loss.detach()))
            if realign_every and step % realign_every == 0 and step <= realign_until * steps:
                kept, error = realign_guide(
                    guide, tolerance=realign_tolerance, prior_mean=prior_mean, generator=generator
                )
                realignments.append((step, kept, error))
                optimizer = torch.optim.Adam(guide.parameters(), lr=learning_rate)
            if progress is not None and (step % 50 == 0 or step == steps):
                progress(step, steps)
    return SVIResult(elbo=history, realignments=realignments, seconds=time.perf_counter() - started)


@dataclass(frozen=True, eq=False)
class BayesianFit:
    """Outcome of :func:`fit_bayesian_head`.

    Attributes:
        model: The fitted classifier (encoders copied from the deterministic stage and frozen).
        elbo: SVI's ELBO per step (empty for NUTS).
        realignments: SVI's re-expressions ``(step, components kept, relative error)``.
        divergences: NUTS divergent transitions per chain (empty for SVI).
        val: Accuracy, NLL and Brier score of the posterior predictive on the validation split.
        seconds: Wall time of the Bayesian stage.
    """

    model: BayesianFusionClassifier
    elbo: list[float]
    realignments: list[tuple[int, int, float]]
    divergences: list[int]
    val: dict[str, float]
    seconds: float


def fit_bayesian_head(
    classifier: MultimodalClassifier,
    train: TensorData,
    val: TensorData,
    *,
    fusion: FusionConfig,
    bayes: BayesConfig,
    rank_prior: RankPrior | str,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> BayesianFit:
    """Freeze the trained classifier's encoders and fit the Bayesian head on their latents (SVI or NUTS).

    Args:
        classifier: The deterministic stage's classifier; its jWAE weights are copied (its LMF head is not used:
            it has Liu's h-unit form; the Bayesian head starts from a random seed-form initialisation).
        train: Training tensors ``{m: (N, d_m)}`` and `(N,)` labels.
        val: Validation tensors; only scored (the ELBO, not validation, decides the fit).
        fusion: ``fusion.rank`` is the maximum rank.
        bayes: Route, prior, steps and read-out settings.
        rank_prior: ``ard`` or ``gaussian``.
        seed: Seed of the initialisation, minibatches and Monte Carlo / NUTS draws.
        progress: Called with ``(steps done, steps total)`` during SVI.

    Returns:
        The fitted model and its diagnostics.

    Raises:
        ConfigError: For rank prior ``none`` or an unknown prior.

    Under the ``gaussian`` prior the components are not re-expressed (nothing is pruned without ARD, so the
    re-expression would only reshuffle them).
    """
    started = time.perf_counter()
    rank_prior = parse_option(rank_prior, RankPrior, name="rank prior")
    if rank_prior is RankPrior.NONE:
        raise ConfigError(
            "fit_bayesian_head needs rank prior 'ard' or 'gaussian'; got 'none'. The deterministic fit is final."
        )
    dims = {m: int(train.views[m].shape[1]) for m in classifier.modalities}
    model = BayesianFusionClassifier(
        input_dims=dims,
        num_classes=classifier.num_classes,
        jwae=classifier.jwae.config,
        fusion=fusion,
        bayes=bayes,
        rank_prior=rank_prior,
    ).to(train.labels.device)
    model.jwae.load_state_dict(classifier.jwae.state_dict())
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        encoded = model.jwae.encode(train.views)
        latents = [encoded[m].detach() for m in model.modalities]
        total = latents[0].shape[0]
        rows = torch.randperm(total, generator=generator) if total >= REFERENCE_SIZE else None
        if rows is None:
            rows = torch.randint(total, (REFERENCE_SIZE,), generator=generator)
        model.reference_latents.copy_(torch.stack([z[rows[:REFERENCE_SIZE].to(z.device)] for z in latents]))
    elbo: list[float] = []
    realignments: list[tuple[int, int, float]] = []
    divergences: list[int] = []
    if bayes.inference is InferenceKind.SVI:
        guide = model.guide
        if guide is None:  # the constructor builds a guide for the SVI route; this guards a subclass that does not
            raise ConfigError("The SVI route needs a model with a guide; got none. Build it with inference 'svi'.")
        result = fit_svi(
            model.head,
            guide,
            latents,
            train.labels,
            steps=bayes.svi_steps,
            learning_rate=bayes.learning_rate,
            batch_size=bayes.batch_size,
            seed=seed,
            realign_every=bayes.realign_every if rank_prior is RankPrior.ARD else 0,
            realign_tolerance=bayes.realign_tolerance,
            progress=progress,
        )
        elbo, realignments = result.elbo, result.realignments
    else:
        nuts = run_nuts_head(
            model.head,
            latents,
            train.labels,
            num_warmup=bayes.num_warmup,
            num_draws=bayes.num_draws,
            num_chains=bayes.num_chains,
            seed=seed,
            parameterisation=bayes.nuts_parameterisation,
        )
        model.store_draws(nuts.flat())
        divergences = nuts.divergences
    model.eval()
    scores = score_classifier(model, val, num_samples=bayes.posterior_samples)
    return BayesianFit(
        model=model,
        elbo=elbo,
        realignments=realignments,
        divergences=divergences,
        val=scores,
        seconds=time.perf_counter() - started,
    )
