r"""Post-hoc Laplace approximation of the seed-form LMF head, with evidence updates of the ARD precisions.

Post-hoc Laplace (as for trained networks): the posterior is a Gaussian at the first stage's weights (the
seed-form head trained with the encoders, early-stopped on validation) whose precision is the generalised
Gauss-Newton (GGN) matrix of the log-likelihood plus the prior precision. The covariance is block-diagonal: one
block per rank component (its M factor rows and its column of Theta, ``n_i = sum_m (d_m + 1) + c`` numbers) and
one for the class biases. Under ARD each component's precision is set by type-II maximum likelihood (the Laplace
evidence, the mean fixed) under its Gamma(a0, b0) hyperprior (MacKay 1992, "Bayesian interpolation"; 1994, ARD;
Immer et al., "Scalable marginal likelihood estimation for model selection in deep learning", ICML 2021):

.. math::
    \lambda_i \leftarrow \frac{n_i + 2 (a_0 - 1)}{\lVert w_i \rVert^2 + \operatorname{tr} \Sigma_i(\lambda_i) + 2 b_0},
    \qquad \Sigma_i(\lambda_i) = (G_i + \lambda_i I)^{-1}

A component the data do not pin down gets a small GGN block, so its posterior spreads to the prior's width, and
its share of the function's variance (the effective rank's read-out) says whether it is used.

Why the GGN is cheap here: the logits are multilinear in one component's parameters. With
``a_{nmi} = w_{mi} . z~_{nm}``, ``P_{ni} = prod_m a_{nmi}`` and ``Q_{nmi} = prod_{k != m} a_{nki}``, the
Jacobian of row n's logits is ``Theta_{:, i} g_{ni}^T`` in the factors (``g_{ni} = [Q_{n1i} z~_{n1}; ...]``) and
``P_{ni} I_c`` in Theta's column, so each block of ``sum_n J_n^T (diag p_n - p_n p_n^T) J_n`` is a few
einsums over (n, component) (:func:`ggn_blocks`), O(N r n_i^2) in all, never an N c x D Jacobian.

The predictive is the linearised (GLM) one, ``logits(theta) ~ logits(theta*) + J (theta - theta*)``, which is
what a GGN Laplace approximates (Immer, Korzepa, Bauer, ICML 2021; Daxberger et al., "Laplace Redux", NeurIPS
2021): its mean logits are those at the centre (the first stage's weights), so up to the averaging of the softmax
it keeps the first stage's accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from probfusion.fusion._common import append_one
from probfusion.fusion.bayesian_lmf import BIAS_SCALE, BayesianLowRankFusion

__all__ = [
    "PRIOR_SCALES",
    "LaplaceFit",
    "component_sites",
    "fit_laplace",
    "ggn_blocks",
    "linearised_logits",
    "sites_from_components",
]

PRECISION_RANGE = (1e-8, 1e8)
"""ARD precisions are kept in this range."""

GGN_CHUNK_ELEMENTS = 2**22
"""Rows of the GGN are summed in chunks of about this many (row, component, coordinate) numbers."""

PRIOR_SCALES = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
"""Multipliers of the evidence's prior precisions among which validation NLL chooses (:func:`fit_laplace`)."""


@dataclass(frozen=True, eq=False)
class LaplaceFit:
    """Outcome of :func:`fit_laplace`.

    Attributes:
        mean: The centre's sites ``factor_k`` `(r, d_k + 1)`, ``theta`` `(c, r)`, ``bias`` `(c,)`.
        precision: The `(r,)` ARD precisions at the last evidence update (the fixed ones without ARD).
        component_tril: `(r, n_i, n_i)` Cholesky factors of each component's posterior covariance, in the
            order ``[w_1i; ...; w_Mi; Theta_{:, i}]``.
        bias_tril: `(c, c)` Cholesky factor of the biases' posterior covariance.
    """

    mean: dict[str, Tensor]
    precision: Tensor
    component_tril: Tensor
    bias_tril: Tensor


def component_sites(sites: dict[str, Tensor], num_modalities: int) -> Tensor:
    """Gather each component's parameters ``[w_1i; ...; w_Mi; Theta_{:, i}]`` into one row.

    Args:
        sites: ``factor_k`` `(*batch, r, d_k + 1)` and ``theta`` `(*batch, c, r)`.
        num_modalities: M.

    Returns:
        A `(*batch, r, n_i)` tensor.
    """
    parts = [sites[f"factor_{k}"] for k in range(num_modalities)]
    return torch.cat([*parts, sites["theta"].transpose(-1, -2)], dim=-1)


def sites_from_components(components: Tensor, input_dims: Sequence[int]) -> dict[str, Tensor]:
    """Inverse of :func:`component_sites`: `(*batch, r, n_i)` rows to ``factor_k`` and ``theta`` sites."""
    out, start = {}, 0
    for k, d in enumerate(input_dims):
        out[f"factor_{k}"] = components[..., start : start + d + 1]
        start += d + 1
    out["theta"] = components[..., start:].transpose(-1, -2)
    return out


def _products(latents: Sequence[Tensor], sites: dict[str, Tensor]) -> tuple[list[Tensor], Tensor, Tensor]:
    """The augmented latents, Q `(M, n, r)` (product over the other modalities) and P `(n, r)`, at one site set."""
    augmented = [append_one(z) for z in latents]
    projections = torch.stack([z @ sites[f"factor_{k}"].T for k, z in enumerate(augmented)])  # (M, n, r)
    # prod over the other modalities, by prefix and suffix products (no division by a near-zero projection)
    ones = torch.ones_like(projections[:1])
    prefix = torch.cat([ones, projections[:-1]]).cumprod(0)
    suffix = torch.cat([projections[1:], ones]).flip(0).cumprod(0).flip(0)
    others = prefix * suffix
    return augmented, others, projections[0] * others[0]


def linearised_logits(latents: Sequence[Tensor], mean: dict[str, Tensor], offsets: dict[str, Tensor]) -> Tensor:
    """The head's logits linearised at ``mean``: ``logits(theta*) + J (theta - theta*)``, for s offsets at once.

    Args:
        latents: M tensors `(n, d_m)`.
        mean: One site set (no draw dimension): ``factor_k`` `(r, d_k + 1)`, ``theta`` `(c, r)`, ``bias`` `(c,)`.
        offsets: ``theta - theta*`` per draw: the same sites with a leading `(s,)`.

    Returns:
        An `(s, n, c)` tensor, differentiable in the latents.
    """
    augmented, others, product = _products(latents, mean)
    theta = mean["theta"]
    moved = sum(
        others[k] * torch.einsum("nd,srd->snr", z, offsets[f"factor_{k}"]) for k, z in enumerate(augmented)
    )  # (s, n, r): the first-order change of each component
    logits = product @ theta.T + mean["bias"]
    tangent = torch.einsum("nr,scr->snc", product, offsets["theta"]) + moved @ theta.T
    return logits + tangent + offsets["bias"].unsqueeze(-2)


def ggn_blocks(latents: Sequence[Tensor], sites: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """The GGN of the summed categorical log-likelihood, per rank component and for the biases.

    Args:
        latents: M tensors `(n, d_m)`.
        sites: One parameter set (no draw dimension): ``factor_k`` `(r, d_k + 1)`, ``theta`` `(c, r)`,
            ``bias`` `(c,)`.

    Returns:
        `(r, n_i, n_i)` component blocks and the `(c, c)` bias block of ``sum_n J_n^T (diag p_n - p_n p_n^T) J_n``.
    """
    augmented, others, product = _products(latents, sites)
    theta = sites["theta"]
    probs = (product @ theta.T + sites["bias"]).softmax(-1)  # (n, c)
    g = torch.cat([others[k].unsqueeze(-1) * z.unsqueeze(1) for k, z in enumerate(augmented)], dim=-1)  # (n, r, nw)
    p_theta = probs @ theta  # (n, r): p_n . Theta_i
    s = probs @ theta.square() - p_theta.square()  # (n, r): Theta_i^T Lambda_n Theta_i
    v = probs.unsqueeze(1) * theta.T.unsqueeze(0) - probs.unsqueeze(1) * p_theta.unsqueeze(-1)  # (n, r, c)
    ww = torch.einsum("ni,nia,nib->iab", s, g, g)
    wt = torch.einsum("ni,nia,nic->iac", product, g, v)
    p2 = product.square()
    tt = torch.diag_embed(p2.T @ probs) - torch.einsum("ni,nc,nd->icd", p2, probs, probs)
    blocks = torch.cat([torch.cat([ww, wt], dim=-1), torch.cat([wt.transpose(-1, -2), tt], dim=-1)], dim=-2)
    bias = torch.diag(probs.sum(0)) - probs.T @ probs
    return blocks, bias


def fit_laplace(
    head: BayesianLowRankFusion,
    latents: Sequence[Tensor],
    *,
    start: dict[str, Tensor],
    start_precision: Tensor,
    rounds: int,
    scales: Sequence[float] = (1.0,),
) -> list[LaplaceFit]:
    """Fit the block-diagonal GGN Laplace approximation at ``start``, with the ARD precisions by evidence.

    Post-hoc, as Laplace is used for trained networks: the mean is the first stage's weights (trained with early
    stopping on validation; re-fitting them to convergence on the frozen training latents overfits), the
    curvature is the GGN there, and under ARD each component's precision maximises the Laplace evidence with the
    mean fixed, by the fixed point ``lambda_i = (n_i + 2 (a0 - 1)) / (||w_i||^2 + tr Sigma_i + 2 b0)`` (the
    Gamma(a0, b0) hyperprior's MAP form). The GGN needs no labels: it is the expected curvature under the
    model's own predictive. Computed in float64 on the device of ``latents``.

    Args:
        head: The Bayesian head (its prior: ARD or fixed Gaussian precisions, Gamma(a0, b0)).
        latents: M tensors `(N, d_m)`, the frozen encoders' training latents.
        start: The mean: sites ``factor_k``, ``theta``, ``bias`` (the first stage's weights).
        start_precision: `(r,)` initial precisions (ignored without ARD: the fixed ones are used).
        rounds: Fixed-point updates of the precisions (none without ARD).
        scales: Multipliers of the prior precisions (after the updates); one fit per scale, sharing the GGN.
            Frozen encoders fit their own training rows almost perfectly, so the GGN there is small and the
            evidence's posterior too wide; :func:`~probfusion.inference.svi.fit_bayesian_head` picks the scale
            by validation NLL (the practice of post-hoc Laplace, Daxberger et al. 2021).

    Returns:
        One fit per scale, in order.
    """
    latents = [z.detach().double() for z in latents]
    device = latents[0].device
    sites = {k: v.detach().double().to(device) for k, v in start.items() if k != "precision"}
    fixed = head.fixed_precision().detach().double().to(device)
    precision = start_precision.detach().double().to(device).clamp(*PRECISION_RANGE) if head.is_ard else fixed
    a0, b0 = float(head.prior_shape), float(head.prior_rate)
    with torch.no_grad():
        components = component_sites(sites, len(head.input_dims))  # (r, n_i)
        norms, (rank, size) = components.square().sum(-1), components.shape
        # The GGN is a sum over rows: accumulated in chunks, so memory stays O(chunk r n_i) whatever N.
        chunk = max(1, GGN_CHUNK_ELEMENTS // (rank * size))
        parts = [ggn_blocks([z[i : i + chunk] for z in latents], sites) for i in range(0, latents[0].shape[0], chunk)]
        blocks = torch.stack([p[0] for p in parts]).sum(0)
        bias_block = torch.stack([p[1] for p in parts]).sum(0)
        eye = torch.eye(size, dtype=blocks.dtype, device=device)
        for _ in range(max(0, rounds) if head.is_ard else 0):
            trace = _covariance(blocks, precision, eye).diagonal(dim1=-2, dim2=-1).sum(-1)
            updated = ((size + 2 * (a0 - 1)) / (norms + trace + 2 * b0)).clamp(*PRECISION_RANGE)
            converged = float((updated.log() - precision.log()).abs().max()) < 1e-4
            precision = updated
            if converged:
                break
        eye_bias = torch.eye(head.num_classes, dtype=torch.float64, device=device) / BIAS_SCALE**2
        fits = []
        for scale in scales:
            covariance = _covariance(blocks, scale * precision, eye)
            bias_covariance = torch.cholesky_inverse(torch.linalg.cholesky(bias_block + scale * eye_bias))
            fits.append(
                LaplaceFit(
                    mean={k: v.float() for k, v in sites.items()},
                    precision=(scale * precision).float(),
                    component_tril=torch.linalg.cholesky(covariance).float(),
                    bias_tril=torch.linalg.cholesky(bias_covariance).float(),
                )
            )
    return fits


def _covariance(blocks: Tensor, precision: Tensor, eye: Tensor) -> Tensor:
    """`(r, n_i, n_i)` covariances ``(G_i + lambda_i I)^-1``."""
    return torch.cholesky_inverse(torch.linalg.cholesky(blocks + precision[:, None, None] * eye))
