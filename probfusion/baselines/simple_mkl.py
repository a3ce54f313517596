r"""SimpleMKL: the reduced-gradient reference solver for the MKL weights, independent of cvxpy.

With trace-normalised kernels :math:`\tilde K_m = (c / r_m) K_m` and weights :math:`d` on the simplex,

.. math::
    J(d) = \max_{0 \le \alpha \le C,\; y^\top \alpha = 0}
        \mathbf{1}^\top \alpha - \tfrac12 \alpha^\top \operatorname{diag}(y)
        \Big(\sum_m d_m \tilde K_m\Big) \operatorname{diag}(y) \alpha,
    \qquad \frac{\partial J}{\partial d_m} = -\tfrac12 \alpha^{*\top} \tilde G_m \alpha^*,

and :math:`\min_d J(d)` is the same problem as the Lanckriet QCQP (whose objective is :math:`2 J`), so the
weights agree: :math:`\mu_m = d_m c / r_m`. Each step solves an SVM (libsvm through scikit-learn, precomputed
kernel), moves along the reduced gradient on the simplex and line-searches exactly (golden section, J is convex);
it stops when the duality gap :math:`\tfrac12 (\max_m \alpha^\top \tilde G_m \alpha - \sum_m d_m \alpha^\top
\tilde G_m \alpha)` falls below ``tolerance`` times J. Cost: one SVM solve (about O(n^2) to O(n^3)) per function
evaluation, tens of evaluations per step. Binary labels only; it is a test and benchmark reference.

Reference: A. Rakotomamonjy, F. Bach, S. Canu, Y. Grandvalet, "SimpleMKL", JMLR 9, 2008.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.svm import SVC

from probfusion.errors import InputDataError

__all__ = ["SimpleMKLResult", "simple_mkl"]

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class SimpleMKLResult:
    """Weights of the reference solver.

    Attributes:
        beta: ``(M,)`` weights of the given kernels, ``sum_m beta_m r_m = c`` (comparable to ``MKLResult.beta``).
        simplex: ``(M,)`` the weights d on the simplex (of the trace-normalised kernels).
        objective: ``2 J(d)``, comparable to the Lanckriet objective.
        gap: The final relative duality gap.
        iterations: Reduced-gradient steps taken.
    """

    beta: np.ndarray
    simplex: np.ndarray
    objective: float
    gap: float
    iterations: int


def _svm(grams: np.ndarray, d: np.ndarray, y: np.ndarray, svm_c: float) -> tuple[float, np.ndarray]:
    """J(d) and the ``(M,)`` quadratic terms ``alpha^T G_m alpha``."""
    kernel = np.tensordot(d, grams, axes=1)
    svc = SVC(C=svm_c, kernel="precomputed", tol=1e-10, shrinking=False).fit(kernel, y)
    beta = np.zeros(y.shape[0])  # y * alpha
    beta[svc.support_] = svc.dual_coef_[0]
    quad = np.einsum("i,mij,j->m", beta, grams, beta)
    return float(np.abs(beta).sum() - 0.5 * d @ quad), quad


def simple_mkl(
    grams: Sequence[np.ndarray],
    y: np.ndarray,
    *,
    svm_c: float = 1.0,
    trace: float | None = None,
    tolerance: float = 1e-9,
    max_iterations: int = 500,
) -> SimpleMKLResult:
    """Kernel weights by SimpleMKL's reduced gradient (see the module docstring).

    Args:
        grams: M Gram matrices, each `(n, n)`.
        y: ``(n,)`` labels of two classes.
        svm_c: Box constraint C.
        trace: The trace c of the combined kernel; ``None`` means ``n``.
        tolerance: Stop when the duality gap is below ``tolerance * J``.
        max_iterations: Most reduced-gradient steps.

    Returns:
        The weights, objective and final gap.

    Raises:
        InputDataError: If ``y`` does not hold exactly two classes or a Gram matrix has the wrong shape.
    """
    y = np.asarray(y)
    classes = np.unique(y)
    if classes.size != 2:
        raise InputDataError(f"simple_mkl needs two classes; got {classes.size}. Use one-vs-rest labels.")
    n = y.shape[0]
    signs = np.where(y == classes[1], 1.0, -1.0)
    stack = np.stack([np.asarray(g, dtype=float) for g in grams])
    if stack.shape[1:] != (n, n):
        raise InputDataError(f"Gram matrices have shape {stack.shape[1:]}; expected ({n}, {n}).")
    c = float(n if trace is None else trace)
    traces = np.einsum("mii->m", stack)
    stack = stack * (c / traces)[:, None, None]
    M = stack.shape[0]
    d = np.full(M, 1.0 / M)
    value, quad = _svm(stack, d, signs, svm_c)
    gap, iterations = np.inf, 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007 - the count is reported
        gap = 0.5 * (quad.max() - d @ quad) / max(value, 1e-300)
        if gap < tolerance:
            break
        grad = -0.5 * quad
        top = int(np.argmax(d))
        direction = np.where((d > 0) | (grad - grad[top] < 0), -(grad - grad[top]), 0.0)
        direction[top] = -(direction.sum() - direction[top])
        shrinking = direction < 0
        if not shrinking.any():
            break
        step_max = float(np.min(-d[shrinking] / direction[shrinking]))
        lo, hi = 0.0, step_max
        # Golden-section search for the minimum of the convex J along the direction.
        a, b = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
        fa = _svm(stack, np.clip(d + a * direction, 0, None), signs, svm_c)[0]
        fb = _svm(stack, np.clip(d + b * direction, 0, None), signs, svm_c)[0]
        while hi - lo > 1e-10 * max(step_max, 1e-12):
            if fa < fb:
                hi, b, fb = b, a, fa
                a = hi - _GOLDEN * (hi - lo)
                fa = _svm(stack, np.clip(d + a * direction, 0, None), signs, svm_c)[0]
            else:
                lo, a, fa = a, b, fb
                b = lo + _GOLDEN * (hi - lo)
                fb = _svm(stack, np.clip(d + b * direction, 0, None), signs, svm_c)[0]
        step = 0.5 * (lo + hi)
        candidate = np.clip(d + step * direction, 0, None)
        candidate[candidate < 1e-12] = 0.0
        candidate /= candidate.sum()
        new_value, new_quad = _svm(stack, candidate, signs, svm_c)
        if new_value > value:
            break
        d, value, quad = candidate, new_value, new_quad
    return SimpleMKLResult(beta=d * c / traces, simplex=d, objective=2.0 * value, gap=float(gap), iterations=iterations)
