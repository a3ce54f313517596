"""Diagnostic behind the H4 over-estimates: the same ARD fit (SVI mean-field, max rank 16, M = 2) at a label noise.

H4's generator labels rows by ``argmax(score + noise * N(0, 1))`` with noise 0.1. This probe reruns r* = 1, 2, 3
(5 seeds each) at another noise and prints the effective rank of each run.
Run: ``python studies/results/h4_ard_rank_recovery/label_noise_probe.py 1.0`` (about 3 minutes on one core).
"""

from __future__ import annotations

import sys

import torch

from probfusion.config import BayesConfig, SyntheticConfig
from probfusion.data.synthetic import make_planted_interaction
from probfusion.fusion.bayesian_lmf import BayesianLowRankFusion, HeadGuide, component_activations
from probfusion.fusion.rank import read_components, summarise_rank
from probfusion.inference.svi import fit_svi


def effective_rank(rank: int, seed: int, noise: float, bayes: BayesConfig) -> int:
    """The effective rank H4 reads off one fit on planted features."""
    config = SyntheticConfig(num_samples=2000, num_modalities=2, dim=8, rank=rank, noise=noise)
    data = make_planted_interaction(config, seed=seed)
    latents = [torch.as_tensor(data.views[m]) for m in data.modality_names]
    head = BayesianLowRankFusion(input_dims=[8, 8], rank=16, num_classes=2, prior_shape=1.0, prior_rate=1.0)
    guide = HeadGuide(model=head, guide=bayes.guide)
    fit_svi(
        head,
        guide,
        latents,
        torch.as_tensor(data.labels),
        steps=bayes.svi_steps,
        learning_rate=bayes.learning_rate,
        batch_size=bayes.batch_size,
        seed=seed,
        realign_every=0,
    )
    with torch.no_grad():
        draws = guide.sample(bayes.posterior_samples, generator=torch.Generator().manual_seed(seed))
        readout = read_components(
            component_activations(latents, draws), draws["theta"], threshold=bayes.activity_threshold
        )
    summary = summarise_rank(readout.shares, draws["precision"], threshold=bayes.activity_threshold, readout=readout)
    return int(summary["effective_rank"])


def main() -> None:
    noise = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    bayes = BayesConfig()
    results = [(r, s, effective_rank(r, s, noise, bayes)) for r in (1, 2, 3) for s in range(5)]
    for rank, seed, found in results:
        print(f"noise {noise:g}, planted rank {rank}, seed {seed}: effective rank {found}")
    over = sum(found > rank for rank, _, found in results)
    exact = sum(found == rank for rank, _, found in results)
    print(f"over-estimated {over}, exact {exact} of {len(results)}")


if __name__ == "__main__":
    main()
