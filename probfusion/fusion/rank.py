r"""Effective rank of a Bayesian LMF head, read off the function it computes, per posterior draw.

For a draw of the head, component i adds :math:`g_i(z) = a_i(z) \Theta^c_{:, i}` to the logits, with
:math:`a_i(z) = \prod_m w_m^{(i)} \cdot \tilde z_m` and Theta centred over classes (a class-constant logit
shift leaves the softmax unchanged). On reference latents the contributions have the `(r, r)` covariance

.. math::
    C_{ij} = \mathrm{Cov}_n(a_i, a_j)\, \langle \Theta^c_{:, i}, \Theta^c_{:, j} \rangle, \qquad
    \mathrm{Var}_n\big(\textstyle\sum_i g_i\big) = \mathbf 1^\top C \mathbf 1 ,

and every read-out comes from C in one go, vectorised over draws: the Shapley share of component i,
:math:`\sum_j C_{ij} / \mathbf 1^\top C \mathbf 1` (:func:`variance_shares`); the leave-one-out share,
:math:`(2 \sum_j C_{ij} - C_{ii}) / \mathbf 1^\top C \mathbf 1` (:func:`leave_one_out_shares`); and the
effective rank of a draw (:func:`read_components`): collinear components merged into one CP term, then the
number of groups whose removal moves more than a threshold of the logits' variance. Two copies of a component
count once, a component and its negative count zero times. Over draws the effective rank has a posterior
distribution (median and equal-tailed interval, :func:`summarise_rank`).

The earlier read-out, :math:`\mathrm{Var}_n(a_i) \|\Theta^c_{:, i}\|^2` per component without cross terms,
counted two identical components with opposite Theta (a constant function) as rank 2.

Reference: L. S. Shapley, "A value for n-person games", 1953 (for a quadratic game, the value is the
covariance with the whole); Zhao, Zhang, Cichocki, "Bayesian CP factorization ... with automatic rank
determination", TPAMI 2015.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "ComponentReadout",
    "contribution_covariance",
    "leave_one_out_shares",
    "read_components",
    "summarise_rank",
    "variance_shares",
]


def contribution_covariance(activations: Tensor, theta: Tensor) -> Tensor:
    r"""Covariance over the reference inputs of the components' class-centred logit contributions, per draw.

    Component i adds :math:`g_i(z) = a_i(z) \Theta^c_{:, i}` to the logits, so
    :math:`C_{ij} = \sum_c \mathrm{Cov}_n(g_{ic}, g_{jc}) = \mathrm{Cov}_n(a_i, a_j) \langle \Theta^c_{:, i},
    \Theta^c_{:, j} \rangle` and the variance of the whole head's logits is :math:`\mathbf 1^\top C \mathbf 1`.

    Args:
        activations: A `(s, n, r)` tensor of component interactions a_i(z) on reference latents.
        theta: A `(s, c, r)` tensor of output weights.

    Returns:
        A `(s, r, r)` symmetric positive semi-definite tensor. Cost: O(s r^2 (n + c)).
    """
    centred = activations - activations.mean(dim=-2, keepdim=True)
    covariance = centred.transpose(-1, -2) @ centred / activations.shape[-2]
    weights = theta - theta.mean(dim=-2, keepdim=True)
    return covariance * (weights.transpose(-1, -2) @ weights)


def _total_variance(covariance: Tensor) -> tuple[Tensor, Tensor]:
    """``1^T C 1`` per draw, and whether it is non-negligible (above 1e-10 of the components' summed variance)."""
    total = covariance.sum(dim=(-1, -2))
    scale = covariance.diagonal(dim1=-2, dim2=-1).sum(-1)
    return total, total > 1e-10 * scale.clamp_min(torch.finfo(covariance.dtype).tiny)


def variance_shares(activations: Tensor, theta: Tensor) -> Tensor:
    r"""Each component's Shapley share of the variance of the head's logits, per draw (covariances included).

    The game "variance of the logits of a coalition S of components", :math:`v(S) = \mathbf 1_S^\top C
    \mathbf 1_S` (:func:`contribution_covariance`), is quadratic, so component i's Shapley value is closed-form:
    :math:`\phi_i = \sum_j C_{ij} = \mathrm{Cov}_n(g_i, \textstyle\sum_j g_j)`, its covariance with the whole.
    Shares :math:`\phi_i / \mathbf 1^\top C \mathbf 1` sum to 1; a component that cancels part of the others
    gets a negative share, and two copies share what one of them would hold alone. For uncorrelated components
    this is :math:`\mathrm{Var}_n(a_i) \|\Theta^c_{:, i}\|^2 / \sum_j (\cdot)`.

    Args:
        activations: A `(s, n, r)` tensor of component interactions a_i(z) on reference latents.
        theta: A `(s, c, r)` tensor of output weights.

    Returns:
        A `(s, r)` tensor of shares summing to 1 per draw (all 0 where the head's logits are constant on the
        reference inputs, up to 1e-10 of the components' summed variance).

    Example:
        >>> a = torch.tensor([[[1.0, 0.0], [-1.0, 0.0]]])
        >>> variance_shares(a, torch.tensor([[[1.0, 1.0], [-1.0, 1.0]]])).tolist()
        [[1.0, 0.0]]
        >>> twins = torch.tensor([[[1.0, 1.0], [-1.0, -1.0]]])  # two copies, then a copy and its negative
        >>> variance_shares(twins, torch.tensor([[[1.0, 1.0], [-1.0, -1.0]]])).tolist()
        [[0.5, 0.5]]
        >>> variance_shares(twins, torch.tensor([[[1.0, -1.0], [-1.0, 1.0]]])).tolist()
        [[0.0, 0.0]]
    """
    covariance = contribution_covariance(activations, theta)
    total, varies = _total_variance(covariance)
    return torch.where(varies.unsqueeze(-1), covariance.sum(-1) / total.unsqueeze(-1), 0.0)


def leave_one_out_shares(activations: Tensor, theta: Tensor) -> Tensor:
    r"""The share of the logits' variance lost when component i is removed, per draw.

    :math:`(\mathrm{Var}(\sum_j g_j) - \mathrm{Var}(\sum_{j \ne i} g_j)) / \mathrm{Var}(\sum_j g_j)
    = (2 \sum_j C_{ij} - C_{ii}) / \mathbf 1^\top C \mathbf 1`, from :func:`contribution_covariance` in one
    go. Does not sum to 1: each of two copies loses 3/4 (removing one halves the function); negative for a
    component whose removal raises the variance.

    Args:
        activations: A `(s, n, r)` tensor of component interactions a_i(z) on reference latents.
        theta: A `(s, c, r)` tensor of output weights.

    Returns:
        A `(s, r)` tensor (all 0 where the head's logits are constant on the reference inputs).
    """
    covariance = contribution_covariance(activations, theta)
    total, varies = _total_variance(covariance)
    lost = 2.0 * covariance.sum(-1) - covariance.diagonal(dim1=-2, dim2=-1)
    return torch.where(varies.unsqueeze(-1), lost / total.unsqueeze(-1), 0.0)


@dataclass(frozen=True)
class ComponentReadout:
    """Per-draw component shares, collinear groups and activity (from :func:`read_components`).

    Attributes:
        shares: `(s, r)` Shapley shares (:func:`variance_shares`).
        leader: `(s, r)` index of the component whose group component i belongs to (i itself if it leads one).
        removal_shares: `(s, r)` variance of the logit change when the group component i leads is removed,
            over the logits' variance (0 where i leads no group).
        active: `(s, r)` whether component i leads a group whose removal share exceeds the threshold.
    """

    shares: Tensor
    leader: Tensor
    removal_shares: Tensor
    active: Tensor

    @property
    def rank(self) -> Tensor:
        """The `(s,)` effective rank of each draw: the number of active groups."""
        return self.active.sum(dim=-1)


def read_components(
    activations: Tensor, theta: Tensor, *, threshold: float, collinearity: float = 1e-2
) -> ComponentReadout:
    r"""Effective rank of each draw from the function: collinear components merged, then their removals counted.

    Two components whose activations are collinear on the reference inputs (:math:`\rho^2_n(a_i, a_j) \ge 1 -`
    ``collinearity``) are one CP term of the function, exactly when :math:`\rho^2 = 1`:
    :math:`a_i \Theta_{:, i} + \kappa a_i \Theta_{:, j} = a_i (\Theta_{:, i} + \kappa \Theta_{:, j})` up to a
    constant. Each draw's components are grouped by collinearity with the component of largest own variance
    :math:`C_{ii}` first (chains resolved by pointer jumping, O(log r) steps). Removing group G moves the
    logits by :math:`g_G = \sum_{j \in G} g_j`, whose variance is :math:`\sum_{j, k \in G} C_{jk}`
    (:func:`contribution_covariance`); the group is active when that is more than ``threshold`` of the logits'
    variance :math:`\mathbf 1^\top C \mathbf 1`. So two copies of a component count once, a component and its
    negative (a constant function) count zero times, and a component split into two collinear halves counts
    once; for uncorrelated components the removal share equals the Shapley share.

    Why removals and not Shapley shares for activity: a near-zero component whose noise happens to correlate
    with the function gets a Shapley share of order :math:`\rho \sqrt{C_{ii} / \mathbf 1^\top C \mathbf 1}`
    (0.01 for an own variance of 1e-4), which would count it. What this does not see: a rank reduction that
    needs non-collinear components recombined (two rank-one terms that agree in all modes but one sum to a
    rank-one term; CP rank in general is NP-hard to compute), and a near-cancelling pair of non-collinear
    components counts twice (each removal moves the function a lot), as it does in the CP rank.

    Args:
        activations: A `(s, n, r)` tensor of component interactions a_i(z) on reference latents.
        theta: A `(s, c, r)` tensor of output weights.
        threshold: A group is active when its removal share exceeds this (``BayesConfig.activity_threshold``).
        collinearity: Largest :math:`1 - \rho^2` at which two components' activations count as collinear.

    Returns:
        The read-out; ``readout.rank`` is the `(s,)` effective rank (0 where the logits are constant on the
        reference inputs). Cost: O(s r^2 (n + c)), vectorised over draws and components.

    Example:
        >>> z = torch.tensor([[[1.0, 1.0, 0.0], [-1.0, -1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]])
        >>> theta = torch.tensor([[[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]]])  # components 0, 1 are copies
        >>> read_components(z, theta, threshold=0.05).rank.tolist()
        [2]
        >>> theta[..., 1] = -theta[..., 0]  # component 1 now cancels component 0
        >>> read_components(z, theta, threshold=0.05).rank.tolist()
        [1]
    """
    rank = activations.shape[-1]
    covariance = contribution_covariance(activations, theta)
    total, varies = _total_variance(covariance)
    shares = torch.where(varies.unsqueeze(-1), covariance.sum(-1) / total.unsqueeze(-1), 0.0)
    centred = activations - activations.mean(dim=-2, keepdim=True)
    moments = centred.transpose(-1, -2) @ centred  # (s, r, r), Cov_n(a) up to 1 / n
    spread = moments.diagonal(dim1=-2, dim2=-1)
    correlation2 = moments.square() / (spread.unsqueeze(-1) * spread.unsqueeze(-2)).clamp_min(
        torch.finfo(moments.dtype).tiny
    )
    eye = torch.eye(rank, dtype=torch.bool, device=activations.device)
    collinear = (correlation2 >= 1.0 - collinearity) | eye  # (s, r, r)
    # Leaders in order of own variance: component j joins the first component (in that order) collinear with it.
    order = covariance.diagonal(dim1=-2, dim2=-1).argsort(dim=-1, descending=True, stable=True)  # (s, r)
    rows = collinear.gather(-2, order.unsqueeze(-1).expand_as(collinear))  # rows in that order
    leader = order.gather(-1, rows.int().argmax(dim=-2))  # (s, r): the first component collinear with each j
    for _ in range(max(1, math.ceil(math.log2(rank)))):  # pointer jumping: follow chains to their root
        leader = leader.gather(-1, leader)
    members = torch.nn.functional.one_hot(leader, rank).transpose(-1, -2).to(covariance.dtype)  # (s, group, j)
    removed = torch.einsum("sgj,sjk,sgk->sg", members, covariance, members)
    removal = torch.where(varies.unsqueeze(-1), removed / total.unsqueeze(-1), 0.0)
    own = leader == torch.arange(rank, device=leader.device)
    return ComponentReadout(shares, leader, removal, own & (removal > threshold))


def _quantile_index(cdf: Tensor, level: float) -> int:
    return int((cdf >= level - 1e-12).nonzero()[0, 0])


def summarise_rank(
    shares: Tensor,
    precisions: Tensor,
    *,
    threshold: float,
    interval: float = 0.9,
    readout: ComponentReadout | None = None,
    sort_within_draw: bool = False,
) -> dict[str, Any]:
    """Posterior summary of the effective rank from per-draw variance shares and precisions.

    Args:
        shares: A `(s, r)` tensor of variance shares per draw.
        precisions: A `(s, r)` tensor of component precisions per draw (fixed ones repeated).
        threshold: Without ``readout``, a component is active in a draw when its share exceeds this.
        interval: Probability mass of the equal-tailed interval of the effective rank.
        readout: :func:`read_components` of the same draws: activity and groups come from it (collinear
            components merged); ``shares`` are then its ``shares``.
        sort_within_draw: Make the per-component table label-invariant: in each draw, order the components
            active first, then by removal share (by share without a ``readout``), so entry k describes "the k-th
            component of each draw" rather than the component with index k (ties, such as exact copies of
            equal own variance, keep index order). For NUTS, whose chains may each label the components
            differently.

    Returns:
        ``effective_rank`` (int, the posterior median), ``effective_rank_interval`` ([lo, hi], equal-tailed),
        ``effective_rank_distribution`` (probabilities of 0..r), ``interval_mass``, ``component_order``
        (``"index"`` or ``"sorted within each draw"``) and ``components`` (one dict per component: ``index``
        (component index, or rank in each draw), ``precision_mean``, ``activity_probability``,
        ``variance_share`` (posterior mean); with a ``readout`` also ``removal_share`` (posterior mean of the
        removal share of the group it leads, 0 in draws where it leads none) and ``merged_probability`` (how
        often it joined another component's group)).

    Example:
        >>> s = torch.tensor([[0.7, 0.3, 0.0], [0.6, 0.39, 0.01]])
        >>> out = summarise_rank(s, torch.ones(2, 3), threshold=0.05)
        >>> out["effective_rank"], out["effective_rank_interval"], out["effective_rank_distribution"]
        (2, [2, 2], [0.0, 0.0, 1.0, 0.0])
    """
    shares, precisions = shares.detach(), precisions.detach()
    rank = shares.shape[-1]
    active = readout.active if readout is not None else shares > threshold
    extra: dict[str, Tensor] = {}
    if readout is not None:
        own = readout.leader == torch.arange(rank, device=shares.device)
        extra = {"removal_share": readout.removal_shares.detach().double(), "merged_probability": (~own).double()}
    if sort_within_draw:  # lexicographic by (active, removal share, share), descending: stable sorts, last key first
        keys = [shares] if readout is None else [shares, readout.removal_shares.detach()]
        order = torch.arange(rank, device=shares.device).expand_as(shares)
        for key in [*keys, active.int()]:
            order = order.gather(-1, key.gather(-1, order).argsort(dim=-1, descending=True, stable=True))
        shares, precisions, active = (t.gather(-1, order) for t in (shares, precisions, active))
        extra = {k: v.gather(-1, order) for k, v in extra.items()}
    counts = torch.bincount(active.sum(dim=-1), minlength=rank + 1).double()
    probs = counts / counts.sum()
    cdf = probs.cumsum(0)
    tail = (1.0 - interval) / 2.0
    means = {k: v.mean(0) for k, v in extra.items()}
    components = [
        {
            "index": i,
            "precision_mean": float(precisions[:, i].mean()),
            "activity_probability": float(active[:, i].double().mean()),
            "variance_share": float(shares[:, i].double().mean()),
            **{k: float(v[i]) for k, v in means.items()},
        }
        for i in range(rank)
    ]
    return {
        "effective_rank": _quantile_index(cdf, 0.5),
        "effective_rank_interval": [_quantile_index(cdf, tail), _quantile_index(cdf, 1.0 - tail)],
        "effective_rank_distribution": [float(p) for p in probs],
        "interval_mass": interval,
        "component_order": "sorted within each draw" if sort_within_draw else "index",
        "components": components,
    }
