r"""Attack budgets: norms, projections onto the budget ball, and random starts.

Inputs are the run's standardised features, ``x_std = (x - mean) / std`` with the training mean and standard
deviation of each feature. A budget ``eps`` is therefore in units of each feature's training standard
deviation: under the L-inf norm every attacked feature moves by at most ``eps`` of its own training standard
deviation. Under the L2 norm the Euclidean length of a sample's whole perturbation, over all attacked features
of all attacked modalities together and measured in standardised units, is at most ``eps``.

.. math::
    \mathcal{B}_\infty(\epsilon) = \{\delta : \max_j |\delta_j| \le \epsilon\}, \qquad
    \mathcal{B}_2(\epsilon) = \{\delta : \lVert \delta \rVert_2 \le \epsilon\}

Every function works on a dict of per-modality perturbations ``{m: (n, d_m)}`` and treats each row (sample) as
one point of the ball, so a batch is projected in one vectorised call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from enum import StrEnum

import torch
from torch import Tensor

from probfusion.errors import ConfigError

__all__ = ["NormKind", "parse_budgets", "project", "random_start", "steepest_ascent"]

# Guards the division by a gradient's L2 norm when the gradient is exactly zero.
_TINY = 1e-12


class NormKind(StrEnum):
    """The norm whose ball bounds a perturbation, in standardised units."""

    LINF = "linf"
    """Each attacked feature moves by at most eps training standard deviations."""
    L2 = "l2"
    """The whole perturbation of one sample (all attacked features together) has Euclidean length at most eps."""


def parse_budgets(text: str | Sequence[float]) -> tuple[float, ...]:
    """Parse a comma-separated list of budgets (``"0.05,0.1,0.2"``) into sorted, distinct floats.

    Args:
        text: The list as text, or a sequence of numbers.

    Returns:
        The budgets in increasing order.

    Raises:
        ConfigError: If an entry is not a number, is negative, not finite, or the list is empty.

    Example:
        >>> parse_budgets("0.2, 0.05,0.1")
        (0.05, 0.1, 0.2)
    """
    items = [s.strip() for s in text.split(",")] if isinstance(text, str) else list(text)
    items = [s for s in items if s != ""]
    if not items:
        raise ConfigError(f"Budget list {text!r} is empty; give numbers such as 0.05,0.1,0.2.")
    values = []
    for item in items:
        try:
            value = float(item)
        except (TypeError, ValueError):
            raise ConfigError(f"Budget {item!r} is not a number; give numbers such as 0.05,0.1,0.2.") from None
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"Budget {item!r} must be a finite number >= 0 (in training standard deviations).")
        values.append(value)
    return tuple(sorted(set(values)))


def _row_norms(delta: Mapping[str, Tensor]) -> Tensor:
    """``(n,)`` L2 norms of each sample's perturbation over all modalities in ``delta``."""
    return torch.stack([d.pow(2).sum(dim=-1) for d in delta.values()]).sum(dim=0).sqrt()


def project(delta: Mapping[str, Tensor], eps: float, norm: NormKind) -> dict[str, Tensor]:
    """Project each sample's perturbation onto the ball of radius ``eps``.

    Args:
        delta: ``{m: (n, d_m)}`` perturbations of the attacked modalities, in standardised units.
        eps: The radius.
        norm: The ball's norm.

    Returns:
        ``{m: (n, d_m)}`` projected perturbations.

    Example:
        >>> out = project({"a": torch.tensor([[3.0, 4.0]])}, 1.0, NormKind.L2)
        >>> out["a"].tolist()
        [[0.6000000238418579, 0.800000011920929]]
    """
    if norm is NormKind.LINF:
        return {m: d.clamp(-eps, eps) for m, d in delta.items()}
    scale = (eps / _row_norms(delta).clamp_min(_TINY)).clamp(max=1.0).unsqueeze(-1)
    return {m: d * scale for m, d in delta.items()}


def steepest_ascent(grad: Mapping[str, Tensor], norm: NormKind) -> dict[str, Tensor]:
    """The unit step of steepest ascent under ``norm``: the sign (L-inf) or the row-normalised gradient (L2).

    Args:
        grad: ``{m: (n, d_m)}`` loss gradients with respect to the attacked modalities.
        norm: The norm of the budget.

    Returns:
        ``{m: (n, d_m)}`` directions of unit norm (zero where the gradient is zero).
    """
    if norm is NormKind.LINF:
        return {m: g.sign() for m, g in grad.items()}
    inv = 1.0 / _row_norms(grad).clamp_min(_TINY)
    return {m: g * inv.unsqueeze(-1) for m, g in grad.items()}


def random_start(
    like: Mapping[str, Tensor], eps: float, norm: NormKind, *, generator: torch.Generator | None = None
) -> dict[str, Tensor]:
    """A uniform draw from the ball of radius ``eps``, one per sample.

    L-inf draws each coordinate uniformly in ``[-eps, eps]``; L2 draws a uniform direction and a radius
    ``eps * u^(1/D)`` with ``D`` the number of attacked features, which is uniform in the ball's volume.

    Args:
        like: ``{m: (n, d_m)}`` tensors giving shapes, dtype and device.
        eps: The radius.
        norm: The ball's norm.
        generator: Source of randomness (``None``: torch's global generator).

    Returns:
        ``{m: (n, d_m)}`` starting perturbations.
    """
    names = list(like)
    widths = [like[m].shape[-1] for m in names]
    first = like[names[0]]
    n, total = first.shape[0], sum(widths)
    # Draw on the generator's device (the CPU for the seeded generators used here), then move to the data's:
    # the same numbers on any device, and no CPU generator handed to a CUDA sampler.
    options = {"dtype": first.dtype, "device": generator.device if generator is not None else first.device}
    if norm is NormKind.LINF:
        flat = (torch.rand(n, total, generator=generator, **options) * 2.0 - 1.0) * eps
    else:
        direction = torch.randn(n, total, generator=generator, **options)
        direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(_TINY)
        radius = eps * torch.rand(n, 1, generator=generator, **options).pow(1.0 / total)
        flat = direction * radius
    return dict(zip(names, flat.to(first.device).split(widths, dim=-1), strict=True))
