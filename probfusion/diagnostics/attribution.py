r"""What each rank component encodes: its share of the output, each modality's share of it, and its removal.

**Modality shares (Shapley decomposition of a component's variance).** In one posterior draw, component i's
activation is a product of one linear projection per modality,

.. math::
    a_i(z) = \prod_{m=1}^{M} p_{m,i}(z_m), \qquad p_{m,i}(z_m) = w_m^{(i)} \cdot \tilde z_m ,

and it reaches the logits only as :math:`a_i(z)\,\Theta_{:, i}`, so the share of component i's output
variance that modality m drives is the share of :math:`\mathrm{Var}_n\, a_i` it drives. For a coalition S of
modalities, let :math:`v(S) = \mathrm{Var}_n\big(\prod_{m \in S} p_{m,i} \prod_{m \notin S} \bar p_{m,i}\big)`:
the variance left when the modalities in S vary over the reference latents and the others sit at their mean
projection (the brief's "vary z_m with the others at their mean", extended to coalitions). Then
:math:`v(\emptyset) = 0` and :math:`v(\{1..M\}) = \mathrm{Var}_n\, a_i`, and modality m's share is its Shapley
value in this game, divided by the total,

.. math::
    \phi_{m,i} = \sum_{S \not\ni m} \frac{|S|!\,(M - |S| - 1)!}{M!}\big(v(S \cup \{m\}) - v(S)\big),
    \qquad \mathrm{share}_{m,i} = \phi_{m,i} / \mathrm{Var}_n\, a_i .

Why this one: Shapley's efficiency axiom makes the shares sum to one *exactly* (a telescoping sum), a modality
whose projection is constant gets zero (null player), and interchangeable modalities get equal shares. The
interaction variance, which no modality owns alone (for centred latents most of a product's variance is
interaction), is split equally among the modalities that make it. With independent modalities this is Owen's
Shapley effect, :math:`\phi_m = \sum_{S \ni m} \tau_S / |S|` with the Sobol indices
:math:`\tau_S = \prod_{k \in S} \sigma_k^2 \prod_{k \notin S} \mu_k^2`; with dependent (aligned) latents a
share can fall slightly outside [0, 1], and the shares still sum to one.

**Component shares** are :func:`~probfusion.fusion.rank.variance_shares`: component i's Shapley share of the
class-centred logits' variance, :math:`\mathrm{Cov}_n(g_i, \sum_j g_j) / \mathrm{Var}_n(\sum_j g_j)` with
:math:`g_i = a_i \Theta^c_{:, i}` (covariances between components included: two copies split one share, a
component and its negative get nothing). They sum to one, so their product with the modality shares is a
(component, modality) table that sums to one.

**Removal.** Setting column i of Theta to zero subtracts exactly :math:`a_i(z) \Theta_{:, i}` from every logit
(the seed form has no other path from component i to the output), so the class-centred variance of the change
is :math:`\mathrm{Var}_n(a_i)\|\Theta^c_{:, i}\|^2` (normalised over components in ``logit_variance_share``;
equal to the Shapley share only for uncorrelated components). What it does to predictions (total variation of
the predictive, argmax flips, accuracy) is measured, not implied.

For a deterministic LMF (Liu's h-unit form, ``(r, h, d_m + 1)`` factors followed by ReLU and a linear head) the
same decomposition runs per fused unit and is summed over the h units of each component; component shares are
then shares of the fused representation's variance (before the head's ReLU), and removal drops component i's
``(n, h)`` output before the head.

Cost: O(s r n M 2^M) for the shares (the 2^M coalitions are enumerated; M <= 10 in practice), O(s n r c) for the
removals; both vectorised over draws, components and coalitions.

Reference: L. S. Shapley, "A value for n-person games", 1953; A. B. Owen, "Sobol' indices and Shapley value",
SIAM/ASA JUQ 2014; E. Song, B. L. Nelson, J. Staum, "Shapley effects for global sensitivity analysis", 2016.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from probfusion.fusion._common import append_one
from probfusion.fusion.bayesian_lmf import component_activations
from probfusion.fusion.lmf import LowRankFusion
from probfusion.fusion.rank import variance_shares

__all__ = [
    "Ablation",
    "Attribution",
    "ablation_from_draws",
    "ablation_from_lmf",
    "attribution_from_draws",
    "attribution_from_lmf",
    "modality_shapley",
]


_MAX_NUMBERS = 2**24


def _coalitions(num_modalities: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Membership ``(2^M, M)`` of every coalition (bit m of k) and the ``(2^M, M)`` Shapley weight matrix A.

    ``phi = v @ A``: A[T, m] = w(|T| - 1) if m is in T, else -w(|T|), with w(k) = k! (M - k - 1)! / M!.
    """
    k = torch.arange(2**num_modalities, device=device)
    members = (k.unsqueeze(-1) >> torch.arange(num_modalities, device=device)) & 1 == 1
    size = members.sum(-1, keepdim=True)
    weight = [
        math.factorial(j) * math.factorial(num_modalities - j - 1) / math.factorial(num_modalities)
        for j in range(num_modalities)
    ] + [0.0]
    table = torch.tensor(weight, dtype=torch.float64, device=device)
    matrix = torch.where(members, table[(size - 1).clamp_min(0)], -table[size.clamp_max(num_modalities)])
    return members, matrix


def modality_shapley(projections: Tensor) -> Tensor:
    """Shapley values of the modalities in the variance of the product of their projections.

    Args:
        projections: A `(..., n, M)` tensor: per row, each modality's projection p_m (leading dims: draws,
            components, fused units...).

    Returns:
        A `(..., M)` tensor phi whose sum over M is ``Var_n(prod_m p_m)`` exactly (population variance).

    Example:
        >>> p = torch.tensor([[1.0, 2.0], [-1.0, 2.0], [3.0, 2.0]])  # modality 1 is constant
        >>> modality_shapley(p).tolist(), float((p[:, 0] * p[:, 1]).var(unbiased=False))
        ([10.666666666666666, 0.0], 10.666666666666666)
    """
    p = projections.double()
    members, matrix = _coalitions(p.shape[-1], p.device)
    mean = p.mean(dim=-2, keepdim=True)
    product = p.new_ones(*p.shape[:-1], members.shape[0])  # (..., n, 2^M)
    for m in range(p.shape[-1]):  # a loop over modalities; rows, draws and coalitions go through one where
        product = product * torch.where(members[:, m], p[..., m : m + 1], mean[..., m : m + 1])
    values = product.var(dim=-2, unbiased=False)  # (..., 2^M): v(S) per coalition
    return values @ matrix


@dataclass(frozen=True)
class Attribution:
    """Component and modality shares, per posterior draw (one draw for a deterministic model).

    Attributes:
        modalities: Modality names, in order.
        component_share: A `(s, r)` tensor: each component's Shapley share of the output variance (sums to 1
            over r; negative for a component that cancels part of the others).
        modality_share: A `(s, r, M)` tensor: each modality's share of component i's variance (sums to 1 over M;
            0 for a component that is constant on the reference latents).
    """

    modalities: tuple[str, ...]
    component_share: Tensor
    modality_share: Tensor

    @property
    def joint_share(self) -> Tensor:
        """A `(s, r, M)` tensor: component share times modality share (sums to 1 over r and M)."""
        return self.component_share.unsqueeze(-1) * self.modality_share

    def rows(self, interval: float = 0.9) -> list[dict[str, float | int | str]]:
        """A tidy table: one row per (component, modality), posterior mean and equal-tailed interval.

        Args:
            interval: Probability mass of the reported interval.

        Returns:
            Dicts with ``component``, ``modality``, ``component_share``, ``modality_share`` (mean),
            ``modality_share_lo``/``_hi`` and ``joint_share`` (mean); components in index order.
        """
        tail = (1.0 - interval) / 2.0
        probs = torch.tensor([tail, 1.0 - tail], dtype=self.modality_share.dtype)
        bounds = torch.quantile(self.modality_share, probs, dim=0)  # (2, r, M)
        component = self.component_share.mean(0)
        share, joint = self.modality_share.mean(0), self.joint_share.mean(0)
        return [
            {
                "component": i,
                "modality": name,
                "component_share": float(component[i]),
                "modality_share": float(share[i, m]),
                "modality_share_lo": float(bounds[0, i, m]),
                "modality_share_hi": float(bounds[1, i, m]),
                "joint_share": float(joint[i, m]),
            }
            for i in range(share.shape[0])
            for m, name in enumerate(self.modalities)
        ]


@dataclass(frozen=True)
class Ablation:
    """What removing each component does, one component at a time.

    Attributes:
        logit_variance_share: `(r,)`: class-centred variance of the logit change, normalised over components
            (posterior mean; for a deterministic LMF, of the change of the fused representation).
        total_variation: `(r,)`: mean over rows of the total variation distance between the posterior-mean
            predictive with and without the component.
        flip_rate: `(r,)`: share of rows whose predicted class changes.
        accuracy_drop: `(r,)`: accuracy with all components minus accuracy without component i (NaN without
            labels).
    """

    logit_variance_share: Tensor
    total_variation: Tensor
    flip_rate: Tensor
    accuracy_drop: Tensor

    def rows(self) -> list[dict[str, float | int]]:
        """One dict per component: ``component`` and the four measures."""
        return [
            {
                "component": i,
                "logit_variance_share": float(self.logit_variance_share[i]),
                "total_variation": float(self.total_variation[i]),
                "flip_rate": float(self.flip_rate[i]),
                "accuracy_drop": float(self.accuracy_drop[i]),
            }
            for i in range(self.flip_rate.shape[0])
        ]


def _normalise(values: Tensor, total: Tensor) -> Tensor:
    return values / total.unsqueeze(-1).clamp_min(torch.finfo(values.dtype).tiny)


def projections_from_draws(latents: Sequence[Tensor], factors: Sequence[Tensor]) -> Tensor:
    """Each modality's projection ``w_m^(i) . z~_m`` per draw and component.

    Args:
        latents: M tensors `(n, d_m)`.
        factors: M tensors `(s, r, d_m + 1)`.

    Returns:
        A `(s, r, n, M)` tensor.
    """
    return torch.stack(
        [torch.einsum("nd,srd->srn", append_one(z), w) for z, w in zip(latents, factors, strict=True)], dim=-1
    )


def attribution_from_draws(
    latents: Sequence[Tensor], draws: dict[str, Tensor], modalities: Sequence[str]
) -> Attribution:
    """Shares of the seed-form head for a batch of posterior draws.

    Args:
        latents: M tensors `(n, d_m)` of reference latents.
        draws: ``factor_k`` `(s, r, d_k + 1)` and ``theta`` `(s, c, r)`.
        modalities: The M modality names.

    Returns:
        The attribution (`(s, r)` component shares, `(s, r, M)` modality shares).
    """
    factors = [draws[f"factor_{k}"] for k in range(len(latents))]
    projections = projections_from_draws(latents, factors)  # (s, r, n, M)
    # Draws go in batches so the (batch, r, n, 2^M) coalition products stay near 2^24 numbers (M = 6: 64 coalitions).
    per_draw = projections[0].numel() // projections.shape[-1] * 2 ** projections.shape[-1]
    batch = max(1, _MAX_NUMBERS // per_draw)
    phi = torch.cat([modality_shapley(part) for part in projections.split(batch)])  # (s, r, M)
    component = variance_shares(component_activations(latents, draws), draws["theta"]).double()
    return Attribution(tuple(modalities), component, _normalise(phi, phi.sum(-1)))


def attribution_from_lmf(latents: Sequence[Tensor], fusion: LowRankFusion, modalities: Sequence[str]) -> Attribution:
    """Shares of a deterministic LMF (h-unit form): summed over each component's h fused units; one draw.

    Args:
        latents: M tensors `(n, d_m)` of reference latents.
        fusion: The fitted fusion layer (factors `(r, h, d_m + 1)`).
        modalities: The M modality names.

    Returns:
        The attribution with s = 1.
    """
    with torch.no_grad():
        projections = torch.stack(
            [torch.einsum("nd,rhd->rhn", append_one(z), w) for z, w in zip(latents, fusion.factors, strict=True)],
            dim=-1,
        )
        phi = modality_shapley(projections).sum(dim=-2)  # (r, M): summed over the h units
    total = phi.sum(-1)
    component = total / total.sum().clamp_min(torch.finfo(total.dtype).tiny)
    return Attribution(tuple(modalities), component.unsqueeze(0), _normalise(phi, total).unsqueeze(0))


def _prediction_changes(probs: Tensor, ablated: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """Total variation, flip rate and accuracy drop from `(n, c)` and `(n, r, c)` mean predictive probabilities."""
    total_variation = 0.5 * (ablated - probs.unsqueeze(-2)).abs().sum(-1).mean(0)
    predicted, ablated_predicted = probs.argmax(-1), ablated.argmax(-1)
    flips = (ablated_predicted != predicted.unsqueeze(-1)).double().mean(0)
    if labels is None:
        drop = torch.full_like(flips, float("nan"))
    else:
        full = (predicted == labels).double().mean()
        drop = full - (ablated_predicted == labels.unsqueeze(-1)).double().mean(0)
    return total_variation, flips, drop


def component_contributions(latents: Sequence[Tensor], draws: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Each component's additive term in the logits, and the logits.

    Args:
        latents: M tensors `(n, d_m)`.
        draws: ``factor_k`` `(s, r, d_k + 1)`, ``theta`` `(s, c, r)`, ``bias`` `(s, c)`.

    Returns:
        ``contributions`` `(s, n, r, c)` (``a_i(z) Theta[:, i]``) and ``logits`` `(s, n, c)` (their sum plus bias).
    """
    activations = component_activations(latents, draws)  # (s, n, r)
    contributions = activations.unsqueeze(-1) * draws["theta"].transpose(-1, -2).unsqueeze(-3)
    return contributions, contributions.sum(-2) + draws["bias"].unsqueeze(-2)


def ablation_from_draws(
    latents: Sequence[Tensor],
    draws: dict[str, Tensor],
    labels: Tensor | None = None,
    offset: Tensor | None = None,
) -> Ablation:
    """Remove each component in turn (Theta column set to 0) from every draw of the seed-form head.

    Args:
        latents: M tensors `(n, d_m)`.
        draws: ``factor_k`` `(s, r, d_k + 1)`, ``theta`` `(s, c, r)`, ``bias`` `(s, c)`.
        labels: `(n,)` class labels, or ``None``.
        offset: `(n, c)` logits added to every draw's, kept when a component is removed (the input skip), or
            ``None``.

    Returns:
        The ablation. Draws go in batches that keep the `(batch, n, r, c)` removed logits near 2^24 numbers.
    """
    s, n = draws["bias"].shape[0], latents[0].shape[0]
    rank, classes = draws["theta"].shape[-1], draws["theta"].shape[-2]
    batch = max(1, _MAX_NUMBERS // (n * rank * classes))
    shares, probs, ablated_probs = [], 0.0, 0.0
    with torch.no_grad():
        for start in range(0, s, batch):  # batches of draws (memory), each vectorised over its draws
            part = {k: v[start : start + batch] for k, v in draws.items()}
            contributions, logits = component_contributions(latents, part)
            if offset is not None:
                logits = logits + offset
            ablated = logits.unsqueeze(-2) - contributions  # (b, n, r, c): logits without component i
            change = contributions - contributions.mean(-1, keepdim=True)  # class-centred
            variance = change.double().var(dim=1, unbiased=False).sum(-1)  # (b, r)
            shares.append(_normalise(variance, variance.sum(-1)))
            probs = probs + logits.softmax(-1).double().sum(0)
            ablated_probs = ablated_probs + ablated.softmax(-1).double().sum(0)
    share = torch.cat(shares).mean(0)
    return Ablation(share, *_prediction_changes(probs / s, ablated_probs / s, labels))


def ablation_from_lmf(
    latents: Sequence[Tensor],
    fusion: LowRankFusion,
    head: torch.nn.Module,
    labels: Tensor | None = None,
    offset: Tensor | None = None,
) -> Ablation:
    """Remove each component of a deterministic LMF in turn (its `(n, h)` output dropped before the head).

    Args:
        latents: M tensors `(n, d_m)`.
        fusion: The fitted fusion layer.
        head: The classifier head, `(..., h) -> (..., c)` logits.
        labels: `(n,)` class labels, or ``None``.
        offset: `(n, c)` logits added to the head's, kept when a component is removed (the input skip), or
            ``None``.

    Returns:
        The ablation (``logit_variance_share`` is of the fused representation's change).
    """
    with torch.no_grad():
        components = fusion.component_outputs(latents)  # (n, r, h)
        fused = fusion(latents)  # the components' sum, plus the additive path if the layer has one
        variance = components.double().var(dim=0, unbiased=False).sum(-1)  # (r,)
        logits, ablated = head(fused), head(fused.unsqueeze(1) - components)  # (n, c), (n, r, c)
        if offset is not None:
            logits, ablated = logits + offset, ablated + offset.unsqueeze(1)
        probs, ablated_probs = logits.softmax(-1).double(), ablated.softmax(-1).double()
    share = variance / variance.sum().clamp_min(torch.finfo(variance.dtype).tiny)
    return Ablation(share, *_prediction_changes(probs, ablated_probs, labels))
