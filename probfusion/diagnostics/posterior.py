r"""A run's posterior: draws of the Bayesian LMF head, as tensors or as ArviZ ``InferenceData``.

Where the posterior lives: an SVI run stores the guide's variational parameters (``model.guide``), so draws are
made fresh, independently, by reparameterisation (reported as one chain); a NUTS run stores its draws
(``draws_<site>`` buffers, ``num_chains * num_draws`` rows, chain-major), so they are returned as they were
sampled, ``(chain, draw)``, and R-hat and ESS apply. Both are vectorised over draws (no loop over samples).

``posterior(run)`` holds, besides the raw sites (whose component labels are arbitrary: permuting components
or flipping two of a component's factor signs leaves the likelihood unchanged), the label-invariant
quantities that diagnostics should use: precisions and variance shares sorted by share per draw, the
effective rank (:func:`~probfusion.fusion.rank.read_components`: collinear components merged), the class
probabilities at a few fixed inputs (the first :data:`PROBE_ROWS` stored reference latents: a function of the
head, so no labelling can change it), the total log-likelihood of the log-likelihood split, and the
per-(component, modality) attributions of :mod:`probfusion.diagnostics.attribution`. Per-index summaries of a
NUTS run (:func:`effective_rank_from_posterior`'s ``components``) are sorted within each draw, since chains may
label the components differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from probfusion.api import LoadedRun, load_run
from probfusion.diagnostics._arviz import az
from probfusion.diagnostics.attribution import attribution_from_draws
from probfusion.diagnostics.inference_data import build_inference_data
from probfusion.errors import ConfigError
from probfusion.fusion._common import concatenated
from probfusion.fusion.bayesian_classifier import BayesianFusionClassifier
from probfusion.fusion.bayesian_lmf import component_activations, head_logits
from probfusion.fusion.rank import ComponentReadout, read_components, summarise_rank
from probfusion.options import InferenceKind

__all__ = [
    "PosteriorDraws",
    "bayesian_model",
    "draw_posterior",
    "draws_from_posterior",
    "effective_rank_from_posterior",
    "effective_rank_posterior",
    "pointwise_log_likelihood",
    "posterior",
    "resolve_run",
    "split_inputs",
    "split_latents",
]

DEFAULT_DRAWS = 400
"""Draws taken from an SVI guide when none are asked for (enough for PSIS's tail fit and stable quantiles)."""

PROBE_ROWS = 4
"""Reference latents at which the posterior's class probabilities are tracked (``probe_probability``)."""


def resolve_run(run: LoadedRun | Path | str) -> LoadedRun:
    """The run itself, or the run loaded from a path (see :func:`probfusion.api.load_run` for the errors)."""
    return run if isinstance(run, LoadedRun) else load_run(run)


def bayesian_model(run: LoadedRun) -> BayesianFusionClassifier:
    """The run's Bayesian classifier.

    Raises:
        ConfigError: If the run is deterministic or GP + MKL (it has no posterior over rank factors).
    """
    if not isinstance(run.model, BayesianFusionClassifier):
        fusion = run.config.fusion
        raise ConfigError(
            f"{run.path} has no posterior over rank factors (model {fusion.model.value!r}, rank prior "
            f"{fusion.rank_prior.value!r}); fit with `probfusion fit --rank-prior ard` (or gaussian) for this."
        )
    return run.model


@dataclass(frozen=True)
class PosteriorDraws:
    """Draws of the head, `(chain, draw, *shape)` per site.

    Attributes:
        sites: ``precision`` `(chain, draw, r)`, ``factor_k`` `(chain, draw, r, d + 1)`, ``theta``
            `(chain, draw, c, r)` and ``bias`` `(chain, draw, c)`.
        modalities: Modality names, in the order of ``factor_k``.
        inference: ``svi`` (independent draws of the guide, one chain) or ``nuts``.
    """

    sites: dict[str, Tensor]
    modalities: tuple[str, ...]
    inference: str

    @property
    def shape(self) -> tuple[int, int]:
        """``(chains, draws per chain)``."""
        return tuple(self.sites["bias"].shape[:2])  # type: ignore[return-value]

    def flat(self) -> dict[str, Tensor]:
        """The draws with chains concatenated: ``{site: (chain * draw, *shape)}``."""
        return {k: v.reshape(-1, *v.shape[2:]) for k, v in self.sites.items()}


def draw_posterior(run: LoadedRun | Path | str, *, num_draws: int | None = None, seed: int = 0) -> PosteriorDraws:
    """Draws of a Bayesian run's head.

    Args:
        run: A loaded run or its directory.
        num_draws: SVI: how many independent draws (default :data:`DEFAULT_DRAWS`). NUTS: ignored; every
            stored draw is returned, in its chain.
        seed: Seed of the SVI draws.

    Returns:
        The draws.

    Raises:
        ConfigError: For a run without a posterior, or ``num_draws < 1``.
    """
    run = resolve_run(run)
    model = bayesian_model(run)
    with torch.no_grad():
        if model.inference is InferenceKind.NUTS:
            bayes = run.config.bayes
            stored = {name: getattr(model, f"draws_{name}") for name in model.head.site_shapes()}
            if "precision" not in stored:
                stored["precision"] = model.head.fixed_precision().expand(stored["bias"].shape[0], -1)
            sites = {k: v.reshape(bayes.num_chains, bayes.num_draws, *v.shape[1:]).clone() for k, v in stored.items()}
        else:
            count = DEFAULT_DRAWS if num_draws is None else num_draws
            flat = model.posterior_draws(count, torch.Generator().manual_seed(seed))
            sites = {k: v.unsqueeze(0).detach().clone() for k, v in flat.items()}
    return PosteriorDraws(sites=sites, modalities=tuple(model.modalities), inference=model.inference.value)


SPLITS = ("train", "val", "test")


def split_inputs(run: LoadedRun, split: str) -> tuple[list[Tensor], Tensor, Tensor | None]:
    """Latents M x `(n, d)`, labels `(n,)` and the input skip's `(n, c)` logits of a ``train``/``val``/``test`` split.

    The skip's logits (``fusion.input_linear``) are ``None`` for a model without one; with one they are part of
    the likelihood that every draw's head logits are added to.

    Raises:
        ConfigError: For another split name.
    """
    if split not in SPLITS:
        raise ConfigError(f"Split must be one of {list(SPLITS)}; got {split!r}.")
    data = run.tensors(run.splits()[SPLITS.index(split)])
    model = run.model
    skip = getattr(model, "input_linear", None)
    with torch.no_grad():
        encoded = model.jwae.encode(data.views)  # type: ignore[attr-defined]
        offset = None if skip is None else skip(concatenated(data.views, model.modalities))  # type: ignore[arg-type]
    return [encoded[m] for m in model.modalities], data.labels, offset  # type: ignore[attr-defined]


def split_latents(run: LoadedRun, split: str) -> tuple[list[Tensor], Tensor]:
    """Encoded latents M x `(n, d)` and labels `(n,)` of the run's ``train``, ``val`` or ``test`` split.

    Raises:
        ConfigError: For another split name.
    """
    latents, labels, _ = split_inputs(run, split)
    return latents, labels


def pointwise_log_likelihood(
    latents: list[Tensor], labels: Tensor, draws: dict[str, Tensor], offset: Tensor | None = None
) -> Tensor:
    """``log p(y_j | z_j, theta^(k))`` for every draw k and row j: a `(s, n)` tensor (vectorised over draws).

    ``offset``: `(n, c)` logits added to every draw's (the input skip, :func:`split_inputs`), or ``None``.
    """
    logits = head_logits(latents, draws)  # (s, n, c), no per-component intermediate
    if offset is not None:
        logits = logits + offset
    return logits.log_softmax(-1).gather(-1, labels.expand(logits.shape[0], -1).unsqueeze(-1)).squeeze(-1)


def _label_invariant(model: BayesianFusionClassifier, draws: dict[str, Tensor], modalities: tuple[str, ...]) -> dict:
    """Sorted precisions and shares, effective rank, component groups and attributions per draw (flat `(s, ...)`)."""
    reference = list(model.reference_latents)
    attribution = attribution_from_draws(reference, draws, modalities)
    shares = attribution.component_share
    readout = read_components(
        component_activations(reference, draws), draws["theta"], threshold=model.bayes.activity_threshold
    )
    order = shares.argsort(dim=-1, descending=True)
    probes = [z[:PROBE_ROWS] for z in reference]
    return {
        "sorted_precision": draws["precision"].double().gather(-1, order),
        "sorted_variance_share": shares.gather(-1, order),
        "effective_rank": readout.rank,
        "probe_probability": head_logits(probes, draws).softmax(-1),
        "variance_share": shares,
        "removal_share": readout.removal_shares.double(),
        "leader": readout.leader,
        "active": readout.active.to(torch.int8),
        "modality_share": attribution.modality_share,
    }


def posterior(
    run: LoadedRun | Path | str,
    *,
    num_draws: int | None = None,
    seed: int = 0,
    log_likelihood_split: str | None = "train",
) -> az.InferenceData:
    """The run's posterior as ArviZ ``InferenceData``.

    Groups: ``posterior`` with the sites ``precision`` (component), ``factor`` (modality, component,
    latent_coord), ``theta`` (output, component), ``bias`` (output) and the label-invariant
    ``sorted_precision`` and ``sorted_variance_share`` (rank_order), ``effective_rank`` (scalar),
    ``probe_probability`` (probe, output: class probabilities at the first :data:`PROBE_ROWS` reference
    latents), ``log_likelihood_total`` (scalar; only with a log-likelihood split), ``variance_share`` (Shapley),
    ``removal_share``, ``leader`` (the component whose collinear group it joined) and ``active`` (0/1), all
    (component), ``modality_share`` (component, modality); ``log_likelihood`` and
    ``observed_data`` (``y``, dim ``obs``) on ``log_likelihood_split`` (the training split by default: the data
    the posterior is conditioned on, as LOO needs), unless it is ``None``.

    Args:
        run: A loaded Bayesian run or its directory.
        num_draws: SVI draws (NUTS returns its stored draws).
        seed: Seed of the SVI draws.
        log_likelihood_split: ``train``, ``val``, ``test`` or ``None``.

    Returns:
        The ``InferenceData``; ``posterior.attrs`` hold the inference route, run path, activity
        threshold and log-likelihood split.
    """
    run = resolve_run(run)
    model = bayesian_model(run)
    drawn = draw_posterior(run, num_draws=num_draws, seed=seed)
    chains, per_chain = drawn.shape
    flat = drawn.flat()
    with torch.no_grad():
        derived = _label_invariant(model, flat, drawn.modalities)
    factor = torch.stack([drawn.sites[f"factor_{k}"] for k in range(len(drawn.modalities))], dim=2)
    values = {
        "precision": drawn.sites["precision"],
        "factor": factor,
        "theta": drawn.sites["theta"],
        "bias": drawn.sites["bias"],
        **{k: v.reshape(chains, per_chain, *v.shape[1:]) for k, v in derived.items()},
    }
    rank, classes = model.head.rank, model.num_classes
    coords = {
        "component": list(range(rank)),
        "rank_order": list(range(rank)),
        "modality": list(drawn.modalities),
        "output": list(range(classes)),
        "latent_coord": list(range(factor.shape[-1])),
        "probe": list(range(values["probe_probability"].shape[2])),
    }
    dims = {
        "precision": ["component"],
        "factor": ["modality", "component", "latent_coord"],
        "theta": ["output", "component"],
        "bias": ["output"],
        "sorted_precision": ["rank_order"],
        "sorted_variance_share": ["rank_order"],
        "variance_share": ["component"],
        "removal_share": ["component"],
        "leader": ["component"],
        "active": ["component"],
        "modality_share": ["component", "modality"],
        "probe_probability": ["probe", "output"],
        "y": ["obs"],
    }
    log_lik = observed = None
    if log_likelihood_split is not None:
        latents, labels, offset = split_inputs(run, log_likelihood_split)
        with torch.no_grad():
            pointwise = pointwise_log_likelihood(latents, labels, flat, offset)
        log_lik = {"y": pointwise.reshape(chains, per_chain, -1).double().numpy()}
        values["log_likelihood_total"] = pointwise.double().sum(-1).reshape(chains, per_chain)
        observed = {"y": labels.cpu().numpy()}
    attrs = {
        "inference": drawn.inference,
        "run": str(run.path),
        "activity_threshold": model.bayes.activity_threshold,
        "log_likelihood_split": str(log_likelihood_split),
    }
    return build_inference_data(
        {k: v.detach().cpu().numpy() for k, v in values.items()},
        dims=dims,
        coords=coords,
        log_likelihood=log_lik,
        observed_data=observed,
        attrs=attrs,
    )


def draws_from_posterior(idata: az.InferenceData) -> PosteriorDraws:
    """The raw sites of :func:`posterior`'s ``InferenceData`` as draws again (the same values, no new draws).

    Lets one ``posterior(run)`` feed every check that needs tensors (removals, the variational Pareto-k), so a
    report draws the posterior once.
    """
    post = idata.posterior
    factor = torch.tensor(post["factor"].values)  # (chain, draw, M, r, d + 1)
    sites = {f"factor_{k}": factor[:, :, k].contiguous() for k in range(factor.shape[2])}
    sites.update({name: torch.tensor(post[name].values) for name in ("precision", "theta", "bias")})
    modalities = tuple(str(m) for m in post["modality"].values)
    return PosteriorDraws(sites=sites, modalities=modalities, inference=str(post.attrs["inference"]))


def effective_rank_from_posterior(idata: az.InferenceData, *, interval: float = 0.9) -> dict:
    """The effective rank's posterior read from :func:`posterior`'s component read-out and ``precision``.

    Args:
        idata: From :func:`posterior`.
        interval: Probability mass of the interval.

    Returns:
        :func:`probfusion.fusion.rank.summarise_rank`'s dict, plus ``num_draws``; for a NUTS run the
        ``components`` table is sorted within each draw (``component_order``).
    """
    post = idata.posterior
    rank = post.sizes["component"]

    def flat(name: str) -> Tensor:
        return torch.tensor(post[name].values).reshape(-1, rank)

    readout = ComponentReadout(
        flat("variance_share"), flat("leader").long(), flat("removal_share"), flat("active").bool()
    )
    summary = summarise_rank(
        readout.shares,
        flat("precision"),
        threshold=float(post.attrs["activity_threshold"]),
        interval=interval,
        readout=readout,
        sort_within_draw=post.attrs["inference"] == InferenceKind.NUTS.value,
    )
    summary["num_draws"] = int(readout.shares.shape[0])
    return summary


def effective_rank_posterior(
    run: LoadedRun | Path | str, *, num_draws: int | None = None, seed: int = 0, interval: float = 0.9
) -> dict:
    """The effective rank's posterior: distribution over 0..r, median, equal-tailed interval, per-component data.

    Read on the reference training latents stored with the model, with the run's activity threshold (see
    :func:`probfusion.fusion.rank.summarise_rank` for the keys).

    Args:
        run: A loaded Bayesian run or its directory.
        num_draws: SVI draws (NUTS uses its stored draws).
        seed: Seed of the SVI draws.
        interval: Probability mass of the interval.

    Returns:
        The summary dict, plus ``num_draws``.
    """
    idata = posterior(run, num_draws=num_draws, seed=seed, log_likelihood_split=None)
    return effective_rank_from_posterior(idata, interval=interval)
