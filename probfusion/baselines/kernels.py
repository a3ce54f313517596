r"""Per-modality kernels of the GP + MKL baseline: Gram matrices, bandwidths and low-rank factors.

Every kernel is normalised to a unit average diagonal, so its trace is ``n`` on any sample and the MKL weights of
kernels of different kinds are comparable. The RBF kernel

.. math::
    k_m(x, x') = \exp\!\left(-\frac{\lVert x - x' \rVert^2}{2 \sigma_m^2}\right)

has unit diagonal already; its bandwidth :math:`\sigma_m` is the median pairwise distance on the training
features (the median heuristic). The linear kernel :math:`x^\top x' / s_m` is divided by the mean squared norm
:math:`s_m` on the training features.

Low-rank factors :math:`K_m \approx L_m L_m^\top` with ``L_m`` of shape ``(n, k)`` let the MKL dual be written
with second-order cone constraints of size ``k`` instead of dense ``(n, n)`` quadratic forms: exact eigen-
decomposition for small ``n``, Nystrom (Williams and Seeger, 2001) on random landmarks above.
"""

from __future__ import annotations

import torch
from torch import Tensor

from probfusion.errors import InputDataError
from probfusion.options import KernelKind, parse_option

__all__ = ["gram", "kernel_factor", "kernel_scale", "median_bandwidth"]

# The median heuristic looks at most this many points (a seeded random subset above), so it costs O(p^2 d_m).
_MEDIAN_POINTS = 1000


def _sq_dist(x1: Tensor, x2: Tensor) -> Tensor:
    """Squared Euclidean distances ``(n1, n2)``; differentiable, clamped at zero against round-off."""
    sq = x1.pow(2).sum(-1, keepdim=True) + x2.pow(2).sum(-1).unsqueeze(-2) - 2.0 * x1 @ x2.transpose(-1, -2)
    return sq.clamp_min(0.0)


def _subset(x: Tensor, max_points: int, generator: torch.Generator | None) -> Tensor:
    if x.shape[0] <= max_points:
        return x
    index = torch.randperm(x.shape[0], generator=generator)[:max_points].to(x.device)
    return x[index]


def median_bandwidth(x: Tensor, *, generator: torch.Generator | None = None) -> float:
    r"""The median heuristic: the median pairwise Euclidean distance between distinct rows.

    Args:
        x: A `(n, d_m)` tensor of features for one modality (training rows).
        generator: Draws the subset of at most 1000 rows used when ``n`` is larger.

    Returns:
        The bandwidth :math:`\sigma_m`; 1.0 when all rows coincide.

    Raises:
        InputDataError: If ``x`` has fewer than two rows.
    """
    if x.ndim != 2 or x.shape[0] < 2:
        raise InputDataError(f"The median heuristic needs a (n, d_m) matrix with n >= 2; got shape {tuple(x.shape)}.")
    sub = _subset(x.detach().double(), _MEDIAN_POINTS, generator)
    dist = _sq_dist(sub, sub).sqrt()
    upper = dist[torch.triu_indices(sub.shape[0], sub.shape[0], offset=1, device=sub.device).unbind(0)]
    value = float(upper.quantile(0.5))
    return value if value > 0 else 1.0


def kernel_scale(x: Tensor, *, kind: KernelKind | str, generator: torch.Generator | None = None) -> float:
    """The normaliser that gives a kernel unit average diagonal on ``x``.

    Args:
        x: A `(n, d_m)` tensor of training features for one modality.
        kind: The kernel.
        generator: Draws the median heuristic's subset when ``n > 1000``.

    Returns:
        The bandwidth for ``rbf`` (median heuristic) or the mean squared row norm for ``linear`` (1.0 if zero).
    """
    kind = parse_option(kind, KernelKind, name="kernel")
    if kind is KernelKind.RBF:
        return median_bandwidth(x, generator=generator)
    value = float(x.detach().double().pow(2).sum(-1).mean())
    return value if value > 0 else 1.0


def gram(x1: Tensor, x2: Tensor, *, kind: KernelKind | str, scale: float | Tensor) -> Tensor:
    """The normalised kernel between two sets of rows of one modality; differentiable in both.

    Args:
        x1: A `(n1, d_m)` tensor.
        x2: A `(n2, d_m)` tensor.
        kind: ``rbf`` or ``linear``.
        scale: From :func:`kernel_scale`: the RBF bandwidth, or the linear kernel's mean squared norm.

    Returns:
        A `(n1, n2)` tensor.
    """
    kind = parse_option(kind, KernelKind, name="kernel")
    if kind is KernelKind.RBF:
        return torch.exp(-0.5 * _sq_dist(x1, x2) / scale**2)
    return (x1 @ x2.transpose(-1, -2)) / scale


def kernel_factor(
    x: Tensor,
    *,
    kind: KernelKind | str,
    scale: float,
    max_rank: int = 128,
    tolerance: float = 1e-4,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A low-rank factor ``L`` with ``L L^T`` close to the normalised Gram matrix of ``x`` (float64).

    The linear kernel's factor is ``x / sqrt(scale)`` itself (exact, rank <= d_m). For the RBF kernel: an exact
    eigendecomposition when ``n <= 2 max_rank``, else Nystrom on ``2 max_rank`` random landmarks; either way the
    spectrum is truncated to at most ``max_rank`` components and to those above ``tolerance`` times the largest.
    Cost: O(n^3) (eigen) or O(n max_rank^2) (Nystrom).

    Args:
        x: A `(n, d_m)` tensor of features.
        kind: ``rbf`` or ``linear``.
        scale: From :func:`kernel_scale`.
        max_rank: Most columns k of the factor.
        tolerance: Eigenvalues below ``tolerance * largest`` are dropped.
        generator: Draws the Nystrom landmarks.

    Returns:
        A `(n, k)` float64 tensor.
    """
    kind = parse_option(kind, KernelKind, name="kernel")
    x = x.detach().double()
    if kind is KernelKind.LINEAR:
        return x / scale**0.5
    n = x.shape[0]
    if n <= 2 * max_rank:
        values, vectors = torch.linalg.eigh(gram(x, x, kind=kind, scale=scale))
        basis = vectors
    else:
        landmarks = _subset(x, 2 * max_rank, generator)
        k_ll = gram(landmarks, landmarks, kind=kind, scale=scale)
        lam, u = torch.linalg.eigh(k_ll)
        keep = lam > tolerance * lam.max()
        # Nystrom: K ~ C K_ll^{-1} C^T with C = K(x, landmarks); factor C U diag(lam^{-1/2}), then re-orthogonalise.
        root = gram(x, landmarks, kind=kind, scale=scale) @ (u[:, keep] / lam[keep].sqrt())
        basis, sing, _ = torch.linalg.svd(root, full_matrices=False)
        values = sing**2
    order = torch.argsort(values, descending=True)[:max_rank]
    values, basis = values[order], basis[:, order]
    keep = values > tolerance * values[0]
    return basis[:, keep] * values[keep].sqrt()
