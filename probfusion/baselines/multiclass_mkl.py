r"""Multi-class MKL as one convex problem: the one-vs-rest SVM duals coupled through one set of kernel weights.

For classes k = 1..c with one-vs-rest labels :math:`y_k \in \{-1, 1\}^n`, kernels :math:`K_m = L_m L_m^\top` of
trace :math:`r_m` and combined trace ``c_tr``, the weights :math:`\mu \ge 0` (:math:`\sum_m \mu_m r_m = c_{tr}`)
minimise the sum of the c binary SVM dual optima on the one shared kernel :math:`K(\mu) = \sum_m \mu_m K_m`:

.. math::
    \min_{\mu} \sum_{k=1}^{c} \max_{\alpha_k \in A_k}
        \Big(2 \mathbf{1}^\top \alpha_k - \alpha_k^\top \operatorname{diag}(y_k) K(\mu) \operatorname{diag}(y_k)
        \alpha_k\Big), \qquad A_k = \{0 \le \alpha_k \le C,\; y_k^\top \alpha_k = 0\}.

Exchanging min and max (the inner function is linear in :math:`\mu`, concave in :math:`\alpha`) gives one QCQP,
Lanckriet et al.'s binary dual with the c problems sharing one epigraph variable t per kernel:

.. math::
    \max_{\alpha_1..\alpha_c,\, t} \; 2 \sum_k \mathbf{1}^\top \alpha_k - c_{tr}\, t
    \quad \text{s.t.} \quad t \ge \tfrac{1}{r_m} \sum_k \lVert L_m^\top (y_k \circ \alpha_k) \rVert^2
    \;(m = 1..M), \quad \alpha_k \in A_k,

one problem instead of c. Each epigraph is written as c small cones :math:`s_{mk} \ge \lVert L_m^\top (y_k \circ
\alpha_k) \rVert^2 / r_m` (size k_m + 2) and one linear row :math:`t \ge \sum_k s_{mk}`: one cone over all classes
would join the classes' KKT blocks into one dense clique. As in the binary problem, :math:`\mu_m = \eta_m / r_m`
from the duals :math:`\eta_m` of those rows (:math:`\sum_m \eta_m = c_{tr}`), and the optimum is the sum of the c
SVM optima at those weights. For two classes the two one-vs-rest problems
coincide (:math:`y_2 = -y_1`), so this is the binary problem doubled, with the same weights.

Cost. An interior-point iteration factorises a KKT system in which each of the c n dual variables is joined to the p
= sum_m k_m rows of ``L^T (y_k * alpha_k)``: c n p dense entries, the same as the c one-vs-rest problems together,
so coupling alone saves nothing per iteration. ``basis_rank`` q cuts p: every factor is projected on the q leading
left singular vectors U of the concatenated factors ``[L_1 .. L_M]`` (:math:`L_m \approx U U^\top L_m`), the c n
variables are joined to q rows ``U^T (y_k * alpha_k)`` only and the cones act on the small ``(q, k_m)`` blocks
:math:`U^\top L_m`; the weights are the exact optimum of the problem on the projected kernels :math:`U U^\top K_m U
U^\top` (their traces are used). Measured by ``studies/benchmarks/mkl_basis_rank.py`` (idle machine, CPU seconds) on
mfeat (n = 2000, c = 10, six rank-48 RBF factors): unprojected 45 s, q = 96 19 s, q = 64 8.5 s, q = 48 7.8 s, q = 32
4.7 s; the largest weight difference to the unprojected optimum over mfeat, CUB, MSRC-v1 and Scene-15 is 0.047 at q
= 48, 0.048 at 64, 0.051 at 96 and 0.119 at 32 (0.137 for the average of the one-vs-rest weights on mfeat), so below
48 the weights degrade and above it they do not improve in the worst case.

References: G. Lanckriet, N. Cristianini, P. Bartlett, L. El Ghaoui, M. Jordan, "Learning the Kernel Matrix with
Semidefinite Programming", JMLR 5, 2004 (the binary dual); A. Zien, C. S. Ong, "Multiclass Multiple Kernel
Learning", ICML 2007 (one set of kernel weights for all classes).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from probfusion.errors import InputDataError

__all__ = ["MulticlassProblem", "joint_basis", "multiclass_lanckriet"]


def joint_basis(factors: Sequence[np.ndarray], rank: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The ``rank`` leading left singular vectors of ``[L_1 .. L_M]`` and each factor's coordinates in them.

    Args:
        factors: M `(n, k_m)` kernel factors.
        rank: Columns q of the basis (at most n and ``sum_m k_m``; more are cut to that).

    Returns:
        The `(n, q)` orthonormal basis U and the M `(q, k_m)` blocks ``U^T L_m``.
    """
    basis, _, _ = np.linalg.svd(np.concatenate(factors, axis=1), full_matrices=False)
    basis = basis[:, :rank]
    return basis, [basis.T @ f for f in factors]


@dataclass(frozen=True, eq=False)
class MulticlassProblem:
    """The coupled problem, built and not yet solved.

    Attributes:
        problem: The cvxpy problem; its optimum is the sum of the one-vs-rest SVM dual optima.
        cones: The M epigraph constraints, one per kernel; their duals are the eta_m.
        traces: ``(M,)`` traces r_m of the kernels the problem is written on (the projected ones with a basis).
    """

    problem: cp.Problem
    cones: list[cp.Constraint]
    traces: np.ndarray


def multiclass_lanckriet(
    factors: Sequence[np.ndarray],
    labels: np.ndarray,
    *,
    svm_c: float,
    trace: float,
    basis_rank: int | None = None,
) -> MulticlassProblem:
    """Build the coupled one-vs-rest QCQP of the module docstring: one problem for all classes.

    The weights are ``eta / traces`` once solved, ``eta`` the duals of ``cones`` (see
    :func:`~probfusion.baselines.mkl.solve_mkl_dual`, which solves it).

    Args:
        factors: M `(n, k_m)` kernel factors (float64).
        labels: ``(n,)`` class labels, at least two classes.
        svm_c: Box constraint C.
        trace: The combined kernel's trace ``c_tr``.
        basis_rank: q, the columns of the joint basis the factors are projected on; ``None`` (or q at least
            ``sum_m k_m``) writes the problem on the factors as given.

    Returns:
        The problem, its M cones and the traces of the kernels it is written on.

    Raises:
        InputDataError: On fewer than two classes.
    """
    classes = np.unique(labels)
    if classes.size < 2:
        raise InputDataError(f"Multi-class MKL needs at least two classes; got {classes.size}.")
    signs = np.where(labels[:, None] == classes[None, :], 1.0, -1.0)  # (n, c) one-vs-rest labels
    n, c = signs.shape
    widths = [f.shape[1] for f in factors]
    if basis_rank is not None and basis_rank < sum(widths):
        # One link z_k = U^T (y_k * alpha_k) of q rows per class; kernel m's cone acts on (U^T L_m)^T z_k.
        basis, blocks = joint_basis(factors, basis_rank)
        maps: list[np.ndarray | slice] = list(blocks)
    else:
        # The link z_k = [L_1 .. L_M]^T (y_k * alpha_k); kernel m's cone acts on its own k_m rows of it.
        basis, blocks = np.concatenate(factors, axis=1), list(factors)
        edges = np.cumsum([0, *widths])
        maps = [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]
    q = basis.shape[1]
    # alpha stacks the classes, alpha[k n + i] = alpha_k[i]; the constant maps are scipy sparse matrices, which
    # cvxpy canonicalises much faster than products of (n, c) matrix expressions.
    alpha, link, t = cp.Variable(n * c), cp.Variable(q * c), cp.Variable()
    sums = sp.block_diag([signs[:, k][None, :] for k in range(c)], format="csr")  # (c, n c): y_k^T alpha_k
    links = sp.block_diag([basis.T * signs[:, k] for k in range(c)], format="csr")  # (q c, n c)
    constraints = [alpha >= 0, alpha <= svm_c, sums @ alpha == 0, link == links @ alpha]
    traces = np.array([float(np.sum(b * b)) for b in blocks])
    # One small cone per (kernel, class), s_mk >= ||v_mk||^2 / r_m, and the per-kernel epigraph t >= sum_k s_mk
    # as a linear row: a cone spanning all classes would join their KKT blocks into one dense (c k, c k) clique.
    parts = cp.Variable((len(blocks), c))
    for m, (part_map, r) in enumerate(zip(maps, traces, strict=True)):
        for k in range(c):
            z = link[k * q : (k + 1) * q]
            v = z[part_map] if isinstance(part_map, slice) else part_map.T @ z
            constraints.append(cp.sum_squares(v) / r <= parts[m, k])
    cones = [cp.sum(parts[m]) <= t for m in range(len(blocks))]
    problem = cp.Problem(cp.Maximize(2 * cp.sum(alpha) - trace * t), [*constraints, *cones])
    return MulticlassProblem(problem=problem, cones=cones, traces=traces)
