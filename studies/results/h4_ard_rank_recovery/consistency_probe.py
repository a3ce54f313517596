"""Diagnostic behind the H4 over-estimates: is the extra component a broad posterior, or the same in every draw?

Refits eight of the over-estimating argmax-label cells (and two exact ones) as H4 did (SVI mean-field, max rank
16, argmax labels, noise 0.1) and prints, beside the per-draw effective rank, each component's consistency
``||E_q g_i||^2 / E_q ||g_i||^2`` (its logit contribution g_i centred over rows): about 1 / draws for a component
whose sign and shape vary from draw to draw, near 1 for one that is the same in every draw.
Run: ``python studies/results/h4_ard_rank_recovery/consistency_probe.py`` (about 4 minutes on one core).
"""

from __future__ import annotations

import torch

from probfusion.config import BayesConfig, SyntheticConfig
from probfusion.data.synthetic import make_planted_interaction
from probfusion.fusion.bayesian_lmf import BayesianLowRankFusion, HeadGuide, component_activations
from probfusion.fusion.rank import read_components
from probfusion.inference.svi import fit_svi

CELLS = [(1, 2, 2), (1, 2, 4), (2, 2, 3), (3, 2, 1), (3, 2, 5), (4, 2, 3), (4, 2, 9), (6, 2, 5), (2, 2, 0), (3, 3, 1)]
"""(planted rank, modalities, seed): the eight over-estimates of the argmax run, then two exact recoveries."""


def probe(rank: int, modalities: int, seed: int, bayes: BayesConfig) -> str:
    """Fit the ARD head on planted rank-``rank`` data and describe it in one line.

    The line gives the median per-draw effective rank and the largest consistencies: for each component, the share
    of its contribution's variance that the posterior draws agree on.
    """
    config = SyntheticConfig(num_samples=2000, num_modalities=modalities, dim=8, rank=rank, noise=0.1)
    data = make_planted_interaction(config, seed=seed)
    latents = [torch.as_tensor(data.views[m]) for m in data.modality_names]
    head = BayesianLowRankFusion(
        input_dims=[8] * modalities, rank=16, num_classes=2, prior_shape=bayes.prior_shape, prior_rate=bayes.prior_rate
    )
    guide = HeadGuide(model=head, guide=bayes.guide)
    labels = torch.as_tensor(data.labels)
    fit_svi(head, guide, latents, labels, steps=bayes.svi_steps, learning_rate=bayes.learning_rate,
            batch_size=bayes.batch_size, seed=seed, realign_every=bayes.realign_every)  # fmt: skip
    with torch.no_grad():
        draws = guide.sample(bayes.posterior_samples, generator=torch.Generator().manual_seed(seed))
        activations = component_activations(latents, draws)
        readout = read_components(activations, draws["theta"], threshold=bayes.activity_threshold)
        theta = draws["theta"] - draws["theta"].mean(-2, keepdim=True)
        contributions = torch.einsum("snr,scr->sncr", activations, theta)
        contributions = contributions - contributions.mean(1, keepdim=True)
        consistency = contributions.mean(0).square().sum((0, 1)) / contributions.square().sum((1, 2)).mean(0)
    top = [round(float(c), 3) for c in consistency.sort(descending=True).values[: rank + 3]]
    return (
        f"M={modalities} r*={rank} seed={seed}: per-draw effective rank {int(readout.rank.double().median())}; "
        f"largest consistencies {top}"
    )


def main() -> None:
    bayes = BayesConfig()
    for cell in CELLS:
        print(probe(*cell, bayes), flush=True)


if __name__ == "__main__":
    main()
