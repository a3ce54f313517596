r"""Kernel weights from a convex multiple-kernel-learning problem, solved with cvxpy.

**Lanckriet (QCQP dual).** For a two-class SVM with labels :math:`y \in \{-1, 1\}^n`, box constraint ``C`` and
kernels :math:`K_m` of trace :math:`r_m`, the kernel :math:`K = \sum_m \mu_m K_m` (:math:`\mu \ge 0`,
:math:`\operatorname{tr} K = c`) that minimises the SVM dual optimum is found from

.. math::
    \max_{\alpha, t} \; 2 \mathbf{1}^\top \alpha - c\, t \quad \text{s.t.} \quad
    t \ge \tfrac{1}{r_m} \alpha^\top G_m \alpha \;(m = 1..M), \quad 0 \le \alpha \le C, \quad y^\top \alpha = 0,

with :math:`G_m = \operatorname{diag}(y) K_m \operatorname{diag}(y)`. The weights are
:math:`\mu_m = \eta_m / r_m`, where :math:`\eta_m \ge 0` are the duals of the quadratic constraints
(:math:`\sum_m \eta_m = c`). With low-rank factors :math:`K_m \approx L_m L_m^\top` (``(n, k_m)``) each
constraint is the cone :math:`\lVert L_m^\top (y \circ \alpha) \rVert^2 \le r_m t`, of size ``k_m`` rather than
a dense ``(n, n)`` quadratic form: cost about O(n k M) per interior-point iteration instead of O(n^2 M).
Multi-class labels: one problem for all classes, the one-vs-rest duals sharing the weights
(:mod:`~probfusion.baselines.multiclass_mkl`, ``multiclass="joint"``), or one problem per class with the weights
averaged (``multiclass="one-vs-rest"``).

**Alignment (centred kernel-target alignment).** With centred kernels :math:`K^c_m = H K_m H`, the
one-hot targets :math:`Y`, :math:`a_m = \langle K^c_m, Y Y^\top \rangle_F` and
:math:`M_{kl} = \langle K^c_k, K^c_l \rangle_F`, the weights solve the M-variable QP
:math:`\min_{v \ge 0} v^\top M v - 2 v^\top a` and :math:`\mu \propto v` (rescaled to the same trace ``c``).
Cost O(n k^2 M^2), one problem for any number of classes.

References: G. Lanckriet, N. Cristianini, P. Bartlett, L. El Ghaoui, M. Jordan, "Learning the Kernel Matrix
with Semidefinite Programming", JMLR 5, 2004; C. Cortes, M. Mohri, A. Rostamizadeh, "Algorithms for Learning
Kernels Based on Centered Alignment", JMLR 13, 2012.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import torch

from probfusion.baselines.multiclass_mkl import multiclass_lanckriet
from probfusion.errors import InputDataError, ProbfusionError
from probfusion.options import MKLFormulation, MKLMulticlass, parse_option

__all__ = ["MKLResult", "MKLSolverError", "solve_mkl_dual"]

_GOOD = ("optimal", "optimal_inaccurate")


class MKLSolverError(ProbfusionError, RuntimeError):
    """The convex solver did not return a usable MKL solution."""


@dataclass(frozen=True)
class MKLResult:
    """Kernel weights and how the solver got them.

    Attributes:
        beta: ``(M,)`` weights of the given kernels, ``sum_m beta_m r_m = c``; on the simplex for kernels of
            unit average diagonal (trace ``n``) with the default ``c = n``.
        status: The worst cvxpy status over the sub-problems (``optimal`` when all are).
        objective: The optimum (Lanckriet binary: the SVM dual optimum; joint multi-class: the sum of the
            one-vs-rest SVM optima at the shared weights; one-vs-rest: mean over the problems; alignment: the
            alignment).
        seconds: Wall-clock time of all solves, including problem construction.
        per_problem: ``(P, M)`` weights of each sub-problem (P = 1 for two classes, joint multi-class or
            alignment).
    """

    beta: np.ndarray
    status: str
    objective: float
    seconds: float
    per_problem: np.ndarray


def _as_factor(matrix: torch.Tensor | np.ndarray, n: int, index: int) -> np.ndarray:
    """``(n, k)`` factor of a Gram matrix ``(n, n)`` (by eigendecomposition) or a factor given as is."""
    array = matrix.detach().cpu().double().numpy() if isinstance(matrix, torch.Tensor) else np.asarray(matrix, float)
    if array.ndim != 2 or array.shape[0] != n:
        raise InputDataError(f"Kernel {index} has shape {array.shape}; expected (n, n) or (n, k) with n = {n} rows.")
    if array.shape[1] != n:
        return array
    values, vectors = np.linalg.eigh(0.5 * (array + array.T))
    keep = values > 1e-10 * max(values.max(), 1e-300)
    return vectors[:, keep] * np.sqrt(values[keep])


def _solve(problem: cp.Problem, solver: str, *, tolerance: float | None = None, backend: str | None = None) -> None:
    """Solve; an inaccurate solution is reported through the status (recorded in the run), not a warning.

    Clarabel's KKT solver is pinned to QDLDL (single-threaded): its default picks faer's multithreaded LDL on
    large problems, which on these KKT systems (thousands of columns each joined to one dense block) was slower
    on 2 shared cores, 21 s against 15 s for one 3-class problem at n = 1000. ``tolerance`` sets Clarabel's
    feasibility and gap tolerances (default 1e-8); ``backend`` cvxpy's canonicalisation backend.
    """
    options: dict[str, object] = {"direct_solve_method": "qdldl"} if solver == "CLARABEL" else {}
    if tolerance is not None and solver == "CLARABEL":
        options.update(tol_feas=tolerance, tol_gap_abs=tolerance, tol_gap_rel=tolerance)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate", category=UserWarning)
        problem.solve(solver=solver, canon_backend=backend, **options)


def _cone_weights(cones: Sequence[cp.Constraint], traces: np.ndarray) -> np.ndarray:
    """``mu_m = eta_m / r_m`` from the duals eta_m of the epigraph constraints (clipped at zero)."""
    eta = np.array([max(float(np.asarray(q.dual_value).reshape(-1)[0]), 0.0) for q in cones])
    return eta / traces


def _check_status(problem: cp.Problem, name: str) -> None:
    if problem.status not in _GOOD:
        raise MKLSolverError(
            f"The {name} ended with status {problem.status!r}; expected 'optimal'. "
            "Try formulation 'alignment', another svm_c, or check the kernels for NaN."
        )


def _joint_lanckriet(
    factors: Sequence[np.ndarray],
    labels: np.ndarray,
    *,
    svm_c: float,
    trace: float,
    basis_rank: int | None,
    solver: str,
) -> tuple[np.ndarray, str, float]:
    built = multiclass_lanckriet(factors, labels, svm_c=svm_c, trace=trace, basis_rank=basis_rank)
    # At 1e-8 the coupled problem's last step often stalls at a relative gap of a few 1e-8 (reported
    # 'optimal_inaccurate'); 1e-7 ends there as 'optimal', far inside the weights' 1e-3 test margin.
    # cvxpy's SCIPY backend canonicalises this problem (a few large sparse constant maps) in 1.2 s of CPU at
    # n = 2000, c = 10 against 2.8 s for the default C++ one.
    _solve(built.problem, solver, tolerance=1e-7, backend=cp.SCIPY_CANON_BACKEND)
    _check_status(built.problem, "multi-class Lanckriet MKL dual")
    return _cone_weights(built.cones, built.traces), built.problem.status, float(built.problem.value)


def _binary_lanckriet(
    factors: Sequence[np.ndarray], y: np.ndarray, *, svm_c: float, trace: float, dense: bool, solver: str
) -> tuple[np.ndarray, str, float]:
    n = y.shape[0]
    alpha, t = cp.Variable(n), cp.Variable()
    ya = cp.multiply(y, alpha)
    traces = [float(np.sum(f * f)) for f in factors]
    if dense:
        # A ridge of 1e-10 of the diagonal keeps cvxpy's LDL of the dense matrix from seeing round-off pivots < 0.
        ridge = [1e-10 * r / n * np.eye(n) for r in traces]
        quads = [
            cp.quad_form(ya, cp.psd_wrap(f @ f.T + e)) / r <= t for f, e, r in zip(factors, ridge, traces, strict=True)
        ]
    else:
        # Explicit u_m = L_m^T (y * alpha) keeps the dense (k_m, n) blocks in equality rows, so the KKT system
        # factorises at O(n (sum k_m)^2) instead of forming a dense (n, n) Schur complement.
        us = [cp.Variable(f.shape[1]) for f in factors]
        links = [u == f.T @ ya for u, f in zip(us, factors, strict=True)]
        quads = [cp.sum_squares(u) / r <= t for u, r in zip(us, traces, strict=True)]
    else_links = [] if dense else links
    problem = cp.Problem(
        cp.Maximize(2 * cp.sum(alpha) - trace * t),
        [alpha >= 0, alpha <= svm_c, y @ alpha == 0, *else_links, *quads],
    )
    _solve(problem, solver)
    _check_status(problem, "Lanckriet MKL dual")
    return _cone_weights(quads, np.array(traces)), problem.status, float(problem.value)


def _alignment(factors: Sequence[np.ndarray], labels: np.ndarray, *, trace: float, solver: str) -> tuple:
    classes = np.unique(labels)
    onehot = (labels[:, None] == classes[None, :]).astype(float)
    target = onehot - onehot.mean(axis=0)
    centred = [f - f.mean(axis=0) for f in factors]
    a = np.array([np.sum((lc.T @ target) ** 2) for lc in centred])
    gram = np.array([[np.sum((lk.T @ ll) ** 2) for ll in centred] for lk in centred])
    v = cp.Variable(len(factors), nonneg=True)
    problem = cp.Problem(cp.Minimize(cp.quad_form(v, cp.psd_wrap(gram)) - 2 * a @ v))
    _solve(problem, solver)
    if problem.status not in _GOOD or v.value is None or not np.any(v.value > 0):
        raise MKLSolverError(
            f"The alignment MKL problem ended with status {problem.status!r}; expected 'optimal' with a non-zero "
            "solution. Check that some kernel is aligned with the labels."
        )
    weights = np.clip(v.value, 0.0, None)
    traces = np.array([np.sum(f * f) for f in factors])
    weights = weights * trace / float(weights @ traces)
    alignment = float(weights @ a) / np.sqrt(float(weights @ gram @ weights) * float(np.sum((target.T @ target) ** 2)))
    return weights, problem.status, alignment


def solve_mkl_dual(
    grams_or_factors: Sequence[torch.Tensor | np.ndarray],
    y: torch.Tensor | np.ndarray,
    *,
    formulation: MKLFormulation | str = MKLFormulation.LANCKRIET,
    multiclass: MKLMulticlass | str = MKLMulticlass.JOINT,
    svm_c: float = 1.0,
    trace: float | None = None,
    basis_rank: int | None = None,
    dense: bool = False,
    solver: str = "CLARABEL",
) -> MKLResult:
    """Kernel weights from the Lanckriet QCQP dual or from centred alignment (see the module docstring).

    Args:
        grams_or_factors: M kernels, each a `(n, n)` Gram matrix (factorised here by eigendecomposition) or a
            `(n, k_m)` low-rank factor ``L_m`` with ``K_m = L_m L_m^T`` (see
            :func:`~probfusion.baselines.kernels.kernel_factor`).
        y: ``(n,)`` integer class labels (two classes, or more).
        formulation: ``lanckriet`` or ``alignment``.
        multiclass: Lanckriet with more than two classes: ``joint`` (one problem, weights shared by the
            one-vs-rest duals) or ``one-vs-rest`` (one problem per class, weights averaged).
        svm_c: Box constraint C of the SVM dual (Lanckriet only).
        trace: The trace c of the combined kernel; ``None`` means ``n``.
        basis_rank: Joint multi-class only: project the factors on this many leading left singular vectors of
            their concatenation (c n q dense KKT entries instead of c n sum_m k_m); ``None`` keeps them.
        dense: Binary Lanckriet only: write each constraint as a dense ``(n, n)`` quadratic form (the reference
            formulation, O(n^2) memory; for benchmarks) instead of a cone of size ``k_m``.
        solver: The cvxpy conic solver.

    Returns:
        The weights, solver status, objective and time.

    Raises:
        InputDataError: On fewer than two kernels or classes, or shapes that disagree.
        MKLSolverError: If the solver fails.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> y = np.repeat([0, 1], 10)
        >>> signal = np.c_[y - 0.5 + 0.1 * rng.normal(size=20)]
        >>> noise = rng.normal(size=(20, 1))
        >>> result = solve_mkl_dual([signal, noise], y, svm_c=10.0, trace=2.0)
        >>> bool(result.beta[0] > 10 * result.beta[1])
        True
    """
    formulation = parse_option(formulation, MKLFormulation, name="MKL formulation")
    multiclass = parse_option(multiclass, MKLMulticlass, name="MKL multi-class treatment")
    labels = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if labels.ndim != 1:
        raise InputDataError(f"MKL labels have shape {labels.shape}; expected (n,).")
    n = labels.shape[0]
    if len(grams_or_factors) < 1:
        raise InputDataError("MKL needs at least one kernel; got none.")
    classes = np.unique(labels)
    if classes.size < 2:
        raise InputDataError(f"MKL labels hold {classes.size} class; expected at least two.")
    if not svm_c > 0:
        raise InputDataError(f"svm_c must be positive; got {svm_c}.")
    if basis_rank is not None and basis_rank < 1:
        raise InputDataError(f"basis_rank must be a positive integer or None; got {basis_rank}.")
    start = time.perf_counter()
    factors = [_as_factor(k, n, i) for i, k in enumerate(grams_or_factors)]
    c = float(n if trace is None else trace)
    if formulation is MKLFormulation.ALIGNMENT:
        beta, status, objective = _alignment(factors, labels, trace=c, solver=solver)
        per_problem = beta[None, :]
    elif classes.size > 2 and multiclass is MKLMulticlass.JOINT:
        beta, status, objective = _joint_lanckriet(
            factors, labels, svm_c=svm_c, trace=c, basis_rank=basis_rank, solver=solver
        )
        per_problem = beta[None, :]
    else:
        positives = classes[1:] if classes.size == 2 else classes
        results = [
            _binary_lanckriet(
                factors, np.where(labels == k, 1.0, -1.0), svm_c=svm_c, trace=c, dense=dense, solver=solver
            )
            for k in positives
        ]
        per_problem = np.stack([r[0] for r in results])
        beta = per_problem.mean(axis=0)
        statuses = [r[1] for r in results]
        status = "optimal" if all(s == "optimal" for s in statuses) else "optimal_inaccurate"
        objective = float(np.mean([r[2] for r in results]))
    return MKLResult(
        beta=beta, status=status, objective=objective, seconds=time.perf_counter() - start, per_problem=per_problem
    )
