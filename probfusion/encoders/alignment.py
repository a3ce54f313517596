"""Alignment terms of the jWAE loss: pull the paired latents z_1..z_M of one sample together."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from probfusion._shapes import Views

__all__ = ["cross_reconstruction", "paired_distance"]


def paired_distance(latents: Sequence[Tensor]) -> Tensor:
    r"""Mean over modality pairs of the mean squared Euclidean distance between paired latents.

    .. math::
        \mathrm{align} = \binom{M}{2}^{-1} \sum_{m < m'} \frac{1}{n} \sum_{j=1}^{n}
            \lVert z_{m,j} - z_{m',j} \rVert^2

    Cost: O(M^2 n d).

    Args:
        latents: M tensors of shape `(n, d)`, one per modality, paired row by row.

    Returns:
        A scalar tensor; zero when there are fewer than two modalities.
    """
    if len(latents) < 2:
        return latents[0].new_zeros(()) if latents else torch.zeros(())
    distances = [(a - b).pow(2).sum(dim=-1).mean() for a, b in combinations(latents, 2)]
    return torch.stack(distances).mean()


def cross_reconstruction(latents: Mapping[str, Tensor], views: Views, decoders: Mapping[str, nn.Module]) -> Tensor:
    r"""Mean over ordered modality pairs of the MSE of decoding one modality from another's latent.

    .. math::
        \mathrm{align} = \frac{1}{M (M - 1)} \sum_{m \ne m'} \mathrm{MSE}(x_{m'}, g_{m'}(z_m))

    The latents of all source modalities go through each decoder in one batched call. Cost: M (M - 1)
    decoder passes over n samples.

    Args:
        latents: ``{m: (n, d)}`` latents, one per modality.
        views: ``{m: (n, d_m)}`` inputs, the reconstruction targets.
        decoders: ``{m: g_m}`` decoders from a `(n, d)` latent to a `(n, d_m)` reconstruction.

    Returns:
        A scalar tensor; zero when there are fewer than two modalities.
    """
    names = list(latents)
    if len(names) < 2:
        return next(iter(latents.values())).new_zeros(()) if names else torch.zeros(())
    losses = []
    for target in names:
        sources = torch.cat([latents[m] for m in names if m != target], dim=0)  # ((M - 1) n, d)
        decoded = decoders[target](sources)
        expected = views[target].repeat(len(names) - 1, 1)
        losses.append(F.mse_loss(decoded, expected))
    # Every target has the same number of (equally sized) sources, so the mean of means is the pair mean.
    return torch.stack(losses).mean()
