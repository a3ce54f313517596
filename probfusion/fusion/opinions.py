r"""Subjective-logic opinions from Dirichlet evidence, and the two ways of combining M of them.

A modality's network gives non-negative evidence :math:`e_m \in \mathbb{R}_{\ge 0}^c`; its Dirichlet has
:math:`\alpha_m = e_m + 1` and strength :math:`S_m = \sum_k \alpha_{mk}`, and its opinion is the belief masses
:math:`b_{mk} = e_{mk} / S_m` and the uncertainty (vacuity) :math:`u_m = c / S_m`, with
:math:`\sum_k b_{mk} + u_m = 1`.

**Reduced Dempster-Shafer rule** (Han et al., TMC, ICLR 2021, Definition 3.1), for two opinions:

.. math::
    C = \sum_{i \ne j} b^1_i b^2_j, \qquad
    b_k = \frac{b^1_k b^2_k + b^1_k u^2 + b^2_k u^1}{1 - C}, \qquad u = \frac{u^1 u^2}{1 - C},

and M opinions are combined pairwise, :math:`\omega = \omega^1 \oplus \omega^2 \oplus \dots \oplus \omega^M`.
Mapping back to evidence (:math:`S = c / u`, :math:`e = b S`) the normaliser :math:`1 - C` cancels:
:math:`e = e^1 + e^2 + e^1 \odot e^2 / c`, i.e. :math:`1 + e / c = (1 + e^1 / c) \odot (1 + e^2 / c)`. So the
rule is associative and commutative, and M views combine in closed form,

.. math::
    e = c \Big( \prod_{m=1}^{M} (1 + e_m / c) - 1 \Big),

computed here as ``c * expm1(sum_m log1p(e_m / c))`` (no division by :math:`1 - C`, stable under high
conflict). **Average evidence** (Xu et al., RCML, AAAI 2024): :math:`e = \frac{1}{M} \sum_m e_m`; for two views it
is their conflictive opinion aggregation :math:`b = (b^1 u^2 + b^2 u^1) / (u^1 + u^2)`,
:math:`u = 2 u^1 u^2 / (u^1 + u^2)`. (The released RCML code averages sequentially, ``e <- (e + e_m) / 2``, which
weights later views more when M > 2; the symmetric mean is used here.)

**Conflictive degree** (RCML) between opinions p and q: the distance of the projected probabilities
:math:`P_k = b_k + u / c = \alpha_k / S` times the conjunctive certainty,
:math:`c(\omega^p, \omega^q) = \tfrac12 \sum_k |P^p_k - P^q_k| \cdot (1 - u^p)(1 - u^q)`.

Cost: O(M n c) for every function here.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "average_evidence",
    "conflict_degree",
    "dempster_shafer",
    "dempster_shafer_pair",
    "opinion",
]

_LOG_CAP = 60.0  # cap on sum_m log1p(e_m / c): the combined evidence stays finite (c * e^60) in float32


def opinion(alpha: Tensor) -> tuple[Tensor, Tensor]:
    """Belief masses and uncertainty of Dirichlet parameters.

    Args:
        alpha: A `(..., c)` tensor of Dirichlet parameters (each at least 1).

    Returns:
        ``(b, u)``: `(..., c)` belief masses ``(alpha - 1) / S`` and the `(...)` uncertainty ``c / S``.

    Example:
        >>> b, u = opinion(torch.tensor([3.0, 1.0]))
        >>> b.tolist(), u.item()
        ([0.5, 0.0], 0.5)
    """
    strength = alpha.sum(dim=-1, keepdim=True)
    return (alpha - 1.0) / strength, alpha.shape[-1] / strength.squeeze(-1)


def dempster_shafer_pair(b1: Tensor, u1: Tensor, b2: Tensor, u2: Tensor) -> tuple[Tensor, Tensor]:
    """The reduced Dempster-Shafer combination of two opinions, in belief form (the paper's equations).

    Args:
        b1: `(..., c)` belief masses of the first opinion.
        u1: `(...)` its uncertainty.
        b2: `(..., c)` belief masses of the second opinion.
        u2: `(...)` its uncertainty.

    Returns:
        ``(b, u)`` of the combined opinion.

    Example:
        >>> b, u = dempster_shafer_pair(torch.tensor([0.5, 0.0]), torch.tensor(0.5),
        ...                             torch.tensor([0.5, 0.0]), torch.tensor(0.5))
        >>> [round(v, 4) for v in b.tolist()], round(u.item(), 4)
        ([0.75, 0.0], 0.25)
    """
    conflict = b1.sum(-1) * b2.sum(-1) - (b1 * b2).sum(-1)
    scale = 1.0 / (1.0 - conflict)
    b = (b1 * b2 + b1 * u2.unsqueeze(-1) + b2 * u1.unsqueeze(-1)) * scale.unsqueeze(-1)
    return b, u1 * u2 * scale


def dempster_shafer(evidence: Tensor) -> Tensor:
    """Combine M opinions by the reduced Dempster-Shafer rule, in its closed evidence form.

    Args:
        evidence: A `(M, n, c)` tensor of non-negative evidence, one slice per modality.

    Returns:
        The `(n, c)` evidence of the combined opinion (its Dirichlet is ``evidence + 1``); differentiable.

    Example:
        >>> dempster_shafer(torch.tensor([[[2.0, 0.0]], [[2.0, 0.0]]])).tolist()
        [[6.0, 0.0]]
    """
    c = evidence.shape[-1]
    total = torch.log1p(evidence / c).sum(dim=0).clamp(max=_LOG_CAP)
    return c * torch.expm1(total)


def average_evidence(evidence: Tensor) -> Tensor:
    """RCML's average evidence aggregation of M opinions.

    Args:
        evidence: A `(M, n, c)` tensor of non-negative evidence.

    Returns:
        The `(n, c)` mean evidence.
    """
    return evidence.mean(dim=0)


def conflict_degree(alpha_p: Tensor, alpha_q: Tensor) -> Tensor:
    """RCML's conflictive degree of two opinions: projected-probability distance times conjunctive certainty.

    Args:
        alpha_p: `(..., c)` Dirichlet parameters of opinion p.
        alpha_q: `(..., c)` Dirichlet parameters of opinion q (broadcast against ``alpha_p``).

    Returns:
        The `(...)` conflictive degree, in [0, 1].

    Example:
        >>> round(conflict_degree(torch.tensor([9.0, 1.0]), torch.tensor([1.0, 9.0])).item(), 4)
        0.512
    """
    s_p = alpha_p.sum(-1, keepdim=True)
    s_q = alpha_q.sum(-1, keepdim=True)
    distance = 0.5 * (alpha_p / s_p - alpha_q / s_q).abs().sum(-1)
    c = alpha_p.shape[-1]
    certainty = (1.0 - c / s_p.squeeze(-1)) * (1.0 - c / s_q.squeeze(-1))
    return distance * certainty
