r"""NUTS on the Bayesian LMF head with frozen encoders: the gold standard that SVI is judged against.

The encoders are frozen after the deterministic stage, so the posterior is over the head's
D = r (sum_m (d_m + 1) + c + 1) + c variables only, which NUTS can sample for small problems (D of a few
hundred, n of a few hundred to a few thousand). The head's posterior is multimodal by construction (permuting
components, or flipping the signs of two of a component's factors, leaves the likelihood unchanged), so NUTS
and SVI answers are compared on label-invariant quantities: sorted precisions and sorted variance shares.

Chains run one after another, each from its own seed (``seed + chain``); Pyro's sampler draws from the global
torch RNG, which is forked so the caller's state is untouched. Cost: O((warmup + draws) * leapfrog steps * n r
(sum_m d_m + c)) per chain.

Reference: M. D. Hoffman, A. Gelman, "The No-U-Turn Sampler", JMLR 2014.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from pyro.infer import MCMC, NUTS
from pyro.infer.autoguide import init_to_uniform
from torch import Tensor

from probfusion.fusion.bayesian_lmf import BayesianLowRankFusion

__all__ = ["NUTSResult", "run_nuts_head"]


@dataclass(frozen=True)
class NUTSResult:
    """Outcome of :func:`run_nuts_head`.

    Attributes:
        draws: ``{site: (chain, draw, *shape)}`` posterior draws (``precision`` under ARD, ``factor_k``,
            ``theta``, ``bias``).
        divergences: Number of divergent transitions after warm-up, per chain.
        seconds: Wall time.
    """

    draws: dict[str, Tensor]
    divergences: list[int]
    seconds: float

    def flat(self) -> dict[str, Tensor]:
        """The draws with chains concatenated: ``{site: (chain * draw, *shape)}``."""
        return {k: v.reshape(-1, *v.shape[2:]) for k, v in self.draws.items()}


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

    Returns:
        Draws shaped `(chain, draw, ...)`, divergences and time.
    """
    started = time.perf_counter()
    per_chain: list[dict[str, Tensor]] = []
    divergences: list[int] = []
    latents = list(latents)
    # One chain at a time (a loop over chains, not over draws): multiprocessing chains would need pickling
    # the model and do not help on the few cores this runs on.
    for chain in range(num_chains):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + chain)
            kernel = NUTS(
                model,
                target_accept_prob=target_accept,
                max_tree_depth=max_tree_depth,
                init_strategy=init_to_uniform(radius=0.5),
                jit_compile=False,
            )
            mcmc = MCMC(kernel, num_samples=num_draws, warmup_steps=num_warmup, num_chains=1, disable_progbar=True)
            mcmc.run(latents, labels)
            samples = mcmc.get_samples()
            divergences.append(int(sum(len(v) for v in mcmc.diagnostics()["divergences"].values())))
        per_chain.append({k: v.detach() for k, v in samples.items()})
    draws = {k: torch.stack([c[k] for c in per_chain]) for k in per_chain[0]}
    return NUTSResult(draws=draws, divergences=divergences, seconds=time.perf_counter() - started)
