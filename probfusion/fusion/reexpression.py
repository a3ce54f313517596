r"""Re-expressions of a seed-form LMF head's rank components: the exact gauge, and the point refit.

**Exact gauge** (:func:`canonical_gauge`). Permuting the components, and rescaling the M factor rows and the
Theta column of one component by positive numbers with product 1, leaves every parameter set's function
unchanged; applied alike to a Gaussian guide's loc, scales and covariance-factor rows it maps q onto itself
(:func:`~probfusion.inference.svi.realign_guide`).

**Point refit** (:func:`reexpress_components`). The weight tensor of one parameter set,
:math:`\mathcal T = \sum_i \Theta^c_{:, i} \otimes w_1^{(i)} \otimes \cdots \otimes w_M^{(i)}`
(c x (d_1 + 1) x ... x (d_M + 1), Theta centred over classes), refitted with the fewest components that
reproduce it to a relative Frobenius error ``tolerance``:

* M = 2 with a rank-one class mode (always so for two classes): exactly, by the SVD of the one bilinear map
  :math:`B = W_1^\top \mathrm{diag}(\sigma q) W_2` (Theta^c = sigma p q^T), each singular triple becoming a
  component;
* otherwise (M >= 3, or M = 2 with c > 2): CP-ALS on :math:`\mathcal T` for k = 1, 2, ... components, run on the
  CP form itself (Gram matrices only, never the dense tensor, so M = 6 views cost O(r^2 sum_m d_m) per sweep).

It keeps the function of that one parameter set (e.g. a posterior mean), not a posterior: it mixes
components, which a mean-field or low-rank Gaussian cannot follow, so it is not applied to guides (mapping a
guide's means alone moved its posterior predictive by up to 0.3).

Reference: T. G. Kolda, B. W. Bader, "Tensor Decompositions and Applications", SIAM Review 2009 (CP-ALS).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["ComponentGauge", "Reexpression", "canonical_gauge", "reexpress_components"]


@dataclass(frozen=True)
class ComponentGauge:
    """An exact re-expression of the head: a permutation of its components and a positive rescaling within each.

    Attributes:
        order: `(r,)` indices: new component k is old component ``order[k]``.
        scales: M + 1 tensors `(r,)`, per new component: the factor of modality m (then Theta's column) is
            multiplied by ``scales[m]``; the M + 1 scales of a component multiply to 1.
    """

    order: Tensor
    scales: list[Tensor]


@torch.no_grad()
def canonical_gauge(factors: Sequence[Tensor], theta: Tensor) -> ComponentGauge:
    r"""Components sorted by weight, and each component's M factor rows and Theta column brought to equal norms.

    Component i's term of the weight tensor is :math:`\Theta_{:, i} \otimes w_1^{(i)} \otimes \cdots \otimes
    w_M^{(i)}`; multiplying its M + 1 vectors by positive scales with product 1 leaves the term unchanged, and
    reordering the terms leaves their sum unchanged, so the head computes the same function for every
    parameter set mapped this way (:func:`~probfusion.inference.svi.realign_guide` maps the whole variational
    posterior with it). The weight is :math:`\|\Theta^c_{:, i}\| \prod_m \|w_m^{(i)}\|` (Theta centred over
    classes); each vector's norm becomes the geometric mean of the M + 1 norms (a component with a zero vector
    keeps its scales).

    Args:
        factors: M tensors `(r, d_m + 1)`, the factor rows w_m^(i) (e.g. the guide's means).
        theta: A `(c, r)` tensor of output weights.

    Returns:
        The gauge.

    Example:
        >>> factors = [torch.tensor([[1.0, 0.0], [0.0, 9.0]])]  # row norms 1 and 9
        >>> gauge = canonical_gauge(factors, torch.tensor([[4.0, 1.0], [0.0, 0.0]]))  # column norms 4 and 1
        >>> gauge.order.tolist(), [[round(v, 4) for v in s.tolist()] for s in gauge.scales]
        ([1, 0], [[0.3333, 2.0], [3.0, 0.5]])
    """
    norms = torch.stack([*(f.norm(dim=-1) for f in factors), theta.norm(dim=0)])  # (M + 1, r)
    centred = theta - theta.mean(dim=0, keepdim=True)
    weight = norms[:-1].prod(dim=0) * centred.norm(dim=0)
    order = weight.argsort(descending=True, stable=True)
    norms = norms[:, order].double()
    tiny = torch.finfo(norms.dtype).tiny
    geometric = norms.clamp_min(tiny).log().mean(dim=0).exp()
    scales = torch.where((norms > 0).all(dim=0), geometric / norms.clamp_min(tiny), 1.0).to(theta.dtype)
    return ComponentGauge(order, list(scales))


@dataclass(frozen=True)
class Reexpression:
    """A re-expression of the head's components.

    Attributes:
        factors: M tensors `(r, d_m + 1)`; rows ``rank`` and above are zero (freed components).
        theta: `(c, r)` output weights, centred over classes; columns ``rank`` and above are zero.
        rank: Number k of components kept.
        relative_error: Relative Frobenius error of the re-expressed weight tensor (0 up to rounding if exact).
    """

    factors: list[Tensor]
    theta: Tensor
    rank: int
    relative_error: float


def _hadamard(grams: Sequence[Tensor], skip: int | None = None) -> Tensor:
    out = None
    for m, gram in enumerate(grams):
        if m != skip:
            out = gram if out is None else out * gram
    return out  # type: ignore[return-value]


def _cp_als(
    modes: list[Tensor], k: int, *, iterations: int, generator: torch.Generator | None
) -> tuple[list[Tensor], float]:
    """Fit k components to the CP tensor with mode matrices ``modes`` `(d_m, r)`; return modes and rel. error."""
    grams = [a.T @ a for a in modes]
    # HOSVD start (tensorly's "svd" init): each mode's k leading left singular vectors of the unfolding
    # T_(n) = A_n (Khatri-Rao of the others)^T, from T_(n) T_(n)^T = A_n (Hadamard of the other Grams) A_n^T.
    fitted = []
    for n, a in enumerate(modes):
        _, vectors = torch.linalg.eigh(a @ _hadamard(grams, skip=n) @ a.T)
        start = vectors.flip(-1)[:, :k]
        if start.shape[1] < k:  # a mode narrower than k: pad with small random columns
            pad = 1e-3 * torch.randn(a.shape[0], k - start.shape[1], generator=generator, dtype=a.dtype)
            start = torch.cat([start, pad.to(a.device)], dim=1)
        fitted.append(start)
    total = _hadamard(grams).sum()
    ridge = 1e-10 * total.abs().clamp_min(1e-30) ** (1.0 / len(modes))
    eye = torch.eye(k, dtype=modes[0].dtype, device=modes[0].device)
    for _ in range(iterations):
        for n in range(len(modes)):
            cross = _hadamard([a.T @ b for a, b in zip(modes, fitted, strict=True)], skip=n)
            gram = _hadamard([b.T @ b for b in fitted], skip=n)
            fitted[n] = torch.linalg.solve(gram + ridge * eye, (modes[n] @ cross).T).T
    cross = _hadamard([a.T @ b for a, b in zip(modes, fitted, strict=True)]).sum()
    own = _hadamard([b.T @ b for b in fitted]).sum()
    error = (total - 2 * cross + own).clamp_min(0.0).sqrt() / total.sqrt().clamp_min(1e-30)
    return fitted, float(error)


def _balanced(modes: list[Tensor], rank: int) -> tuple[list[Tensor], Tensor]:
    """Equal column norms across modes, components sorted by weight, padded with zeros to ``rank``."""
    norms = torch.stack([a.norm(dim=0) for a in modes])  # (M + 1, k)
    weight = norms.prod(dim=0)
    order = weight.argsort(descending=True)
    per_mode = weight[order].pow(1.0 / len(modes))
    out = []
    for a, n in zip(modes, norms, strict=True):
        unit = a[:, order] / n[order].clamp_min(1e-30)
        padded = a.new_zeros(a.shape[0], rank)
        padded[:, : a.shape[1]] = unit * per_mode
        out.append(padded)
    return out[1:], out[0]


@torch.no_grad()
def reexpress_components(
    factors: Sequence[Tensor],
    theta: Tensor,
    *,
    tolerance: float = 1e-2,
    iterations: int = 100,
    generator: torch.Generator | None = None,
) -> Reexpression:
    """Re-express one parameter set with the fewest components that keep its probabilities to ``tolerance``.

    A point re-expression (see the module docstring): not a map of a posterior.

    Args:
        factors: M tensors `(r, d_m + 1)`, the factor rows w_m^(i).
        theta: A `(c, r)` tensor of output weights.
        tolerance: Largest relative Frobenius error of the weight tensor accepted for fewer components.
        iterations: CP-ALS sweeps per candidate rank (ignored by the exact M = 2 route).
        generator: Source of the small random columns that pad a start narrower than k (CP route only).

    Returns:
        The re-expression; if no smaller k meets the tolerance, the k = r fit is the input itself.
    """
    rank = theta.shape[1]
    centred = theta - theta.mean(dim=0, keepdim=True)
    u, s, vh = torch.linalg.svd(centred, full_matrices=False)
    if len(factors) == 2 and (s.numel() < 2 or s[1] <= 1e-9 * s[0].clamp_min(1e-30)):
        # Exact route: one bilinear map B; its SVD is a CP decomposition with a rank-one class mode.
        bilinear = factors[0].T @ ((s[0] * vh[0]).unsqueeze(-1) * factors[1])
        left, singular, right_t = torch.linalg.svd(bilinear, full_matrices=False)
        energy = singular.square().flip(0).cumsum(0).flip(0)  # energy[k]: mass of singular values k..
        total = energy[0].clamp_min(1e-30)
        errors = torch.cat([(energy[1:] / total).sqrt(), singular.new_zeros(1)])  # error when keeping k + 1
        k = min(int((errors <= tolerance).nonzero()[0, 0]) + 1, rank)
        modes = [u[:, :1].expand(-1, k) * 1.0, left[:, :k] * singular[:k], right_t[:k].T]
        new_factors, new_theta = _balanced(modes, rank)
        return Reexpression([f.T.contiguous() for f in new_factors], new_theta, k, float(errors[k - 1]))
    modes = [centred, *(f.T for f in factors)]
    for k in range(1, rank):
        fitted, error = _cp_als(modes, k, iterations=iterations, generator=generator)
        if error <= tolerance:
            new_factors, new_theta = _balanced(fitted, rank)
            return Reexpression([f.T.contiguous() for f in new_factors], new_theta, k, error)
    new_factors, new_theta = _balanced(modes, rank)
    return Reexpression([f.T.contiguous() for f in new_factors], new_theta, rank, 0.0)
