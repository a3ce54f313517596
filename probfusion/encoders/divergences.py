r"""Divergences between the aggregate posterior q(z_m) of a batch of latents and the N(0, I) prior.

These are the Wasserstein-autoencoder penalties of Tolstikhin et al., 2018, "Wasserstein Auto-Encoders"
(ICLR): a sample-based divergence between the batch of latents and an equally large sample of the prior.
Every random draw (prior sample, projections) comes from the ``generator`` argument, so a seeded generator
gives a deterministic penalty and the global RNG is left alone.
"""

from __future__ import annotations

import torch
from torch import Tensor

from probfusion.errors import ConfigError
from probfusion.options import PriorPenalty, parse_option

__all__ = [
    "IMQ_SCALES",
    "mmd_imq",
    "mmd_imq_to_prior",
    "prior_divergence",
    "sliced_wasserstein",
    "sliced_wasserstein_to_prior",
]

IMQ_SCALES: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
"""Multipliers of the IMQ kernel constant ``C = 2 d scale``, as in the WAE reference implementation."""


def _standard_normal(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """A `(n, d)` sample of N(0, I) shaped like ``like``, drawn on the generator's device, then moved."""
    device = generator.device if generator is not None else like.device
    sample = torch.randn(like.shape, generator=generator, device=device, dtype=like.dtype)
    return sample.to(like.device)


def _random_directions(d: int, num: int, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """A `(d, num)` matrix of directions uniform on the unit sphere (POT's layout of ``projections``)."""
    device = generator.device if generator is not None else like.device
    directions = torch.randn(d, num, generator=generator, device=device, dtype=like.dtype).to(like.device)
    return directions / directions.norm(dim=0, keepdim=True)


def sliced_wasserstein(
    source: Tensor, target: Tensor, *, num_projections: int, generator: torch.Generator | None = None
) -> Tensor:
    r"""Monte Carlo sliced 2-Wasserstein distance between two equally weighted samples (POT, differentiable).

    .. math::
        SW_2(\mu, \nu) = \Big( \mathbb{E}_{\theta \sim U(S^{d-1})}
            W_2^2(\theta_\# \mu, \theta_\# \nu) \Big)^{1/2}

    The directions are drawn here from ``generator`` (POT's own ``seed`` would reseed torch's global RNG). For
    two samples of equal size, the jWAE case, the 1-D optimal plan pairs the sorted projections, so
    :math:`W_2^2` is the mean squared difference of the sorted values: two sorts per call, vectorised over the
    L directions. Unequal sizes go through :func:`ot.sliced_wasserstein_distance` (quantile functions). Both
    routes give the same number (tested); the sorted route is why a training step no longer spends a third of
    its time in POT's general 1-D solver (``studies/benchmarks/profile_cli.py``). Cost: O(L n (d + log n)).

    Args:
        source: A `(n, d)` tensor of samples.
        target: A `(n', d)` tensor of samples.
        num_projections: Number L of random directions.
        generator: Source of the random directions; ``None`` uses torch's global RNG.

    Returns:
        A scalar tensor, differentiable in ``source`` and ``target``.
    """
    if num_projections < 1:
        raise ConfigError(f"num_projections must be a positive integer; got {num_projections}.")
    projections = _random_directions(source.shape[1], num_projections, source, generator)
    if source.shape[0] == target.shape[0]:
        # (n, L) projections; sorting each column pairs the i-th smallest values, the 1-D optimal coupling.
        source_sorted = (source @ projections).sort(dim=0).values
        target_sorted = (target @ projections).sort(dim=0).values
        return (source_sorted - target_sorted).pow(2).mean().sqrt()
    import ot  # POT takes about a second to import; only unequal sample sizes need it.

    return ot.sliced_wasserstein_distance(source, target, projections=projections, p=2)


def sliced_wasserstein_to_prior(z: Tensor, *, num_projections: int, generator: torch.Generator | None = None) -> Tensor:
    """Sliced 2-Wasserstein distance between a batch of latents and an equally large N(0, I) sample.

    The prior sample is drawn first, then the directions, both from ``generator``.

    Args:
        z: A `(n, d)` tensor of latents.
        num_projections: Number of random directions.
        generator: Source of the prior sample and the directions; ``None`` uses torch's global RNG.

    Returns:
        A scalar tensor, differentiable in ``z``; near zero when ``z`` is a large N(0, I) sample.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> z = torch.randn(4096, 2, generator=g) + 3.0
        >>> bool(sliced_wasserstein_to_prior(z, num_projections=50, generator=g) > 2.0)
        True
    """
    prior = _standard_normal(z, generator)
    return sliced_wasserstein(z, prior, num_projections=num_projections, generator=generator)


def mmd_imq(x: Tensor, y: Tensor, *, scales: tuple[float, ...] = IMQ_SCALES) -> Tensor:
    r"""Unbiased squared MMD between two samples under a sum of inverse-multiquadratic kernels.

    .. math::
        k(a, b) = \sum_s \frac{C_s}{C_s + \lVert a - b \rVert^2}, \qquad C_s = 2 d \cdot s

    (``C = 2 d`` is the WAE choice for a unit-variance prior.) The within-sample terms leave out the
    diagonal, so the estimate is unbiased and may be slightly negative. Cost: O(n^2 d).

    Args:
        x: A `(n, d)` tensor of samples, n >= 2.
        y: A `(n', d)` tensor of samples, n' >= 2.
        scales: The kernel scales s.

    Returns:
        A scalar tensor, differentiable in ``x`` and ``y``.
    """
    n, d = x.shape
    m = y.shape[0]
    if n < 2 or m < 2:
        raise ConfigError(f"The unbiased MMD needs at least 2 samples on each side; got {n} and {m}.")
    c = 2.0 * d * torch.tensor(scales, dtype=x.dtype, device=x.device).view(-1, 1, 1)

    def kernel_sum(a: Tensor, b: Tensor, *, drop_diagonal: bool) -> Tensor:
        # ||a - b||^2 from norms and inner products: differentiable at zero distance, unlike cdist.
        sq = (a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1) - 2.0 * a @ b.T).clamp_min(0.0)
        total = (c / (c + sq)).sum()
        # The diagonal of k(a, a) is exactly one per scale.
        return total - len(scales) * a.shape[0] if drop_diagonal else total

    within_x = kernel_sum(x, x, drop_diagonal=True) / (n * (n - 1))
    within_y = kernel_sum(y, y, drop_diagonal=True) / (m * (m - 1))
    across = kernel_sum(x, y, drop_diagonal=False) / (n * m)
    return within_x + within_y - 2.0 * across


def mmd_imq_to_prior(z: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Unbiased IMQ-kernel MMD between a batch of latents and an equally large N(0, I) sample (WAE-MMD).

    Args:
        z: A `(n, d)` tensor of latents, n >= 2.
        generator: Source of the prior sample; ``None`` uses torch's global RNG.

    Returns:
        A scalar tensor, differentiable in ``z``; zero in expectation when ``z`` is N(0, I).
    """
    return mmd_imq(z, _standard_normal(z, generator))


def prior_divergence(
    z: Tensor,
    kind: PriorPenalty | str,
    *,
    num_projections: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The jWAE prior penalty D(q(z_m), N(0, I)) of one modality's latents.

    Args:
        z: A `(n, d)` tensor of latents.
        kind: Which divergence; ``none`` gives a zero tensor without drawing anything.
        num_projections: Number of random directions (sliced Wasserstein only).
        generator: Source of all random draws; ``None`` uses torch's global RNG.

    Returns:
        A scalar tensor.
    """
    kind = parse_option(kind, PriorPenalty, name="prior penalty")
    if kind is PriorPenalty.SWD:
        return sliced_wasserstein_to_prior(z, num_projections=num_projections, generator=generator)
    if kind is PriorPenalty.MMD:
        return mmd_imq_to_prior(z, generator=generator)
    return z.new_zeros(())
