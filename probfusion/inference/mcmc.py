r"""NUTS on the Bayesian LMF head with frozen encoders: the gold standard that SVI is judged against.

The encoders are frozen after the deterministic stage, so the posterior is over the head's
D = r (sum_m (d_m + 1) + c + 1) + c variables only, which NUTS can sample for small problems (D of a few
hundred, n of a few hundred to a few thousand). The head's posterior is multimodal by construction (permuting
components, or flipping the signs of two of a component's factors, leaves the likelihood unchanged), so NUTS
and SVI answers are compared on label-invariant quantities: sorted precisions and sorted variance shares.

Parameterisation. Under ARD the factors are ``w ~ N(0, lambda^-1)`` given ``lambda ~ Gamma(a0, b0)``: sampled
as they stand (``centred``) this is Neal's funnel, and it is narrowest exactly where ARD prunes (lambda
large, w squeezed to zero), where the sampler's one step size is too long and trajectories diverge. The
default, ``non-centred``, samples ``eps ~ N(0, I)`` and sets ``w = lambda^(-1/2) eps`` (Pyro's
``LocScaleReparam(centered=0)`` on every factor and on Theta), which removes the funnel: eps and lambda are
independent a priori. Either way the draws are returned as the model's own sites (``factor_k``, ``theta``), so
nothing downstream sees the difference. The ``gaussian`` rank prior has a fixed scale and no funnel; it is
sampled as it stands.

Chains run one after another, each from its own seed (``seed + chain``); Pyro's sampler draws from the global
torch RNG, which is forked so the caller's state is untouched. Divergent transitions after warm-up are counted
per chain (``MCMC.diagnostics()["divergences"]``; it needs at least 4 draws per chain). Cost: O((warmup +
draws) * leapfrog steps * n r (sum_m d_m + c)) per chain.

References: M. D. Hoffman, A. Gelman, "The No-U-Turn Sampler", JMLR 2014; O. Papaspiliopoulos, G. O. Roberts,
M. Sköld, "A general framework for the parametrization of hierarchical models", Statistical Science 2007;
M. Betancourt, M. Girolami, "Hamiltonian Monte Carlo for hierarchical models", 2013 (the funnel).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from pyro import poutine
from pyro.infer import MCMC, NUTS
from pyro.infer.autoguide import init_to_uniform
from pyro.infer.reparam import LocScaleReparam
from torch import Tensor

from probfusion.errors import ConfigError
from probfusion.fusion.bayesian_lmf import BayesianLowRankFusion
from probfusion.options import NUTSParameterisation, parse_option

__all__ = ["NUTSResult", "non_centred_model", "recentre", "run_nuts_head"]

MIN_DRAWS = 4
"""Fewest draws per chain: ``MCMC.diagnostics()`` (divergences, acceptance) computes R-hat/ESS, which needs 4."""

_SUFFIX = "_decentered"  # Pyro's name for the standardised site that LocScaleReparam adds


@dataclass(frozen=True)
class NUTSResult:
    """Outcome of :func:`run_nuts_head`.

    Attributes:
        draws: ``{site: (chain, draw, *shape)}`` posterior draws of the model's sites (``precision`` under ARD,
            ``factor_k``, ``theta``, ``bias``), whatever the parameterisation sampled.
        divergences: Number of divergent transitions after warm-up, per chain.
        seconds: Wall time.
        parameterisation: ``centred`` or ``non-centred`` (what the sampler actually saw).
        acceptance: Mean acceptance probability after warm-up, per chain.
    """

    draws: dict[str, Tensor]
    divergences: list[int]
    seconds: float
    parameterisation: str = NUTSParameterisation.CENTRED.value
    acceptance: tuple[float, ...] = ()

    def flat(self) -> dict[str, Tensor]:
        """The draws with chains concatenated: ``{site: (chain * draw, *shape)}``."""
        return {k: v.reshape(-1, *v.shape[2:]) for k, v in self.draws.items()}


def _scaled_sites(model: BayesianLowRankFusion) -> list[str]:
    return [*(f"factor_{k}" for k in range(len(model.input_dims))), "theta"]


def non_centred_model(model: BayesianLowRankFusion) -> Callable[..., Tensor]:
    """``model`` with every factor and Theta sampled as ``lambda^(-1/2) eps``, ``eps ~ N(0, I)``.

    The sites ``factor_k_decentered`` and ``theta_decentered`` become the latent variables; ``factor_k`` and
    ``theta`` are deterministic functions of them and of ``precision`` (see :func:`recentre`).
    """
    return poutine.reparam(model, config={name: LocScaleReparam(centered=0.0) for name in _scaled_sites(model)})


def recentre(model: BayesianLowRankFusion, samples: dict[str, Tensor]) -> dict[str, Tensor]:
    """The model's sites from non-centred draws, vectorised over the leading draw dimension.

    Args:
        model: The head.
        samples: ``precision`` `(s, r)`, ``bias`` `(s, c)`, ``factor_k_decentered`` `(s, r, d_k + 1)` and
            ``theta_decentered`` `(s, c, r)`.

    Returns:
        ``{precision, factor_k, theta, bias}`` with ``w = loc + scale * eps`` under the model's own priors.
    """
    precision = samples["precision"]
    out = {"precision": precision, "bias": samples["bias"]}
    for name in _scaled_sites(model):
        prior = model.theta_prior(precision) if name == "theta" else model.factor_prior(int(name[7:]), precision)
        base = prior.base_dist  # Independent(Normal(loc, scale), 2)
        out[name] = base.loc + base.scale * samples[name + _SUFFIX]
    return out


def run_nuts_head(
    model: BayesianLowRankFusion,
    latents: Sequence[Tensor],
    labels: Tensor,
    *,
    num_warmup: int,
    num_draws: int,
    num_chains: int,
    seed: int,
    target_accept: float = 0.8,
    max_tree_depth: int = 8,
    parameterisation: NUTSParameterisation | str = NUTSParameterisation.NON_CENTRED,
) -> NUTSResult:
    """Sample the head's posterior on fixed latents with NUTS.

    Args:
        model: The Bayesian head (the Pyro model).
        latents: M tensors of shape `(n, d_m)` (the frozen encoders' output on the training set).
        labels: An `(n,)` tensor of class labels.
        num_warmup: Warm-up (adaptation) steps per chain.
        num_draws: Kept draws per chain.
        num_chains: Number of chains.
        seed: Seed of chain 0; chain j uses ``seed + j``.
        target_accept: NUTS target acceptance probability.
        max_tree_depth: Largest NUTS tree depth (2^depth leapfrog steps at most).
        parameterisation: ``non-centred`` (default) or ``centred``; only ARD has a funnel to remove, so the
            ``gaussian`` prior is always sampled centred.

    Returns:
        Draws shaped `(chain, draw, ...)`, divergences per chain, acceptance and time.

    Raises:
        ConfigError: For fewer than :data:`MIN_DRAWS` draws per chain.
    """
    if num_draws < MIN_DRAWS:
        raise ConfigError(
            f"NUTS needs at least {MIN_DRAWS} draws per chain (for Pyro's diagnostics); got num_draws={num_draws}."
        )
    started = time.perf_counter()
    choice = parse_option(parameterisation, NUTSParameterisation, name="NUTS parameterisation")
    non_centred = choice is NUTSParameterisation.NON_CENTRED and model.is_ard
    target = non_centred_model(model) if non_centred else model
    per_chain: list[dict[str, Tensor]] = []
    divergences: list[int] = []
    acceptance: list[float] = []
    latents = list(latents)
    # One chain at a time (a loop over chains, not over draws): multiprocessing chains would need pickling
    # the model and do not help on the few cores this runs on.
    for chain in range(num_chains):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + chain)
            kernel = NUTS(
                target,
                target_accept_prob=target_accept,
                max_tree_depth=max_tree_depth,
                init_strategy=init_to_uniform(radius=0.5),
                jit_compile=False,
            )
            mcmc = MCMC(kernel, num_samples=num_draws, warmup_steps=num_warmup, num_chains=1, disable_progbar=True)
            mcmc.run(latents, labels)
            samples = {k: v.detach() for k, v in mcmc.get_samples().items()}
            # Divergent steps after warm-up and the acceptance rate, per chain, as MCMC.diagnostics() reports them
            # (its R-hat/ESS pass is why at least 4 draws are needed).
            diagnostics = mcmc.diagnostics()
            divergences.append(int(sum(len(v) for v in diagnostics["divergences"].values())))
            acceptance.append(float(next(iter(diagnostics["acceptance rate"].values()))))
        per_chain.append(recentre(model, samples) if non_centred else samples)
    draws = {k: torch.stack([c[k] for c in per_chain]) for k in per_chain[0]}
    used = NUTSParameterisation.NON_CENTRED if non_centred else NUTSParameterisation.CENTRED
    return NUTSResult(
        draws=draws,
        divergences=divergences,
        seconds=time.perf_counter() - started,
        parameterisation=used.value,
        acceptance=tuple(acceptance),
    )
