import itertools

import numpy as np
import pytest
import torch
from sklearn.svm import SVC

from probfusion.baselines.kernels import gram, kernel_scale
from probfusion.baselines.mkl import solve_mkl_dual
from probfusion.baselines.multiclass_mkl import joint_basis, multiclass_lanckriet


def _three_class_problem(n, seed):
    """Three classes; kernel m separates class m from the rest (so the shared optimum is inside the simplex)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    grams = []
    for m, strength in enumerate((1.6, 1.2, 0.9)):
        x = rng.normal(size=(n, 2))
        x[:, 0] += strength * np.where(y == m, 1.0, -0.5)
        t = torch.as_tensor(x)
        grams.append(gram(t, t, kind="rbf", scale=kernel_scale(t, kind="rbf")).numpy())
    return grams, y


def _svm_dual(kernel, signs, svm_c):
    """One binary SVM dual optimum 2 1'a - a'Ga by libsvm (independent of cvxpy)."""
    svc = SVC(C=svm_c, kernel="precomputed", tol=1e-12, shrinking=False).fit(kernel, signs)
    coef = np.zeros(len(signs))
    coef[svc.support_] = svc.dual_coef_[0]
    return 2 * np.abs(coef).sum() - coef @ kernel @ coef


def _sum_of_one_vs_rest(grams, y, mu, svm_c):
    kernel = np.tensordot(mu, np.stack(grams), axes=1)
    return sum(_svm_dual(kernel, np.where(y == k, 1, -1), svm_c) for k in np.unique(y))


def _zooming_grid_search(grams, y, svm_c):
    """Grid search over the 3-kernel simplex for the weights minimising the summed one-vs-rest SVM optima.

    The objective is convex in the weights, so a grid refined around its best point (step / 4, four points
    each side, one old step) converges to the minimiser; the last grid has a step of 1e-4.
    """
    centre, step, span = np.array([1 / 3, 1 / 3]), 0.1, 10  # the first grid covers the whole simplex
    best = (np.inf, None)
    while step >= 1e-4:
        offsets = np.arange(-span, span + 1) * step
        for da, db in itertools.product(offsets, offsets):
            head = centre + np.array([da, db])
            mu = np.array([*head, 1 - head.sum()])
            if np.any(mu < -1e-12):
                continue
            mu = np.clip(mu, 0, None)
            best = min(best, (_sum_of_one_vs_rest(grams, y, mu, svm_c), mu), key=lambda b: b[0])
        centre, step, span = best[1][:2], step / 4, 4
    return best


def test_joint_weights_match_brute_force_search_to_1e3():
    grams, y = _three_class_problem(30, seed=0)
    result = solve_mkl_dual(grams, y, svm_c=1.0)
    value, mu = _zooming_grid_search(grams, y, 1.0)
    assert result.status == "optimal"
    assert result.per_problem.shape == (1, 3)
    assert result.beta.sum() == pytest.approx(1.0, abs=1e-6)
    assert np.all(result.beta > 0.05), "the test problem is meant to have an interior optimum"
    np.testing.assert_allclose(result.beta, mu, atol=1e-3)
    # The optimum is the sum of the three SVM optima at the weights found (libsvm, not cvxpy).
    assert result.objective == pytest.approx(value, rel=1e-5)
    assert result.objective == pytest.approx(_sum_of_one_vs_rest(grams, y, result.beta, 1.0), rel=1e-5)


def test_joint_is_not_the_average_of_one_vs_rest_weights():
    grams, y = _three_class_problem(30, seed=0)
    joint = solve_mkl_dual(grams, y, multiclass="joint")
    averaged = solve_mkl_dual(grams, y, multiclass="one-vs-rest")
    assert averaged.per_problem.shape == (3, 3)
    # Same problem family, different estimators; the joint weights are the better ones for the summed objective.
    assert np.abs(joint.beta - averaged.beta).max() > 1e-2
    summed = [_sum_of_one_vs_rest(grams, y, r.beta, 1.0) for r in (joint, averaged)]
    assert summed[0] < summed[1]


def test_joint_on_two_classes_matches_the_binary_solver():
    grams, y3 = _three_class_problem(40, seed=1)
    y = (y3 == 0).astype(int)
    binary = solve_mkl_dual(grams, y)
    # Two classes take the binary path; the coupled problem on the same labels holds the one-vs-rest pair
    # (y, -y), the binary problem twice, so it must give the same weights and twice the optimum.
    factors = [np.linalg.cholesky(g + 1e-9 * np.eye(40)) for g in grams]
    built = multiclass_lanckriet(factors, y, svm_c=1.0, trace=40.0)
    built.problem.solve(solver="CLARABEL")
    eta = np.array([float(np.asarray(c.dual_value).reshape(-1)[0]) for c in built.cones])
    assert built.problem.status == "optimal"
    np.testing.assert_allclose(eta / built.traces, binary.beta, atol=1e-4)
    assert built.problem.value == pytest.approx(2 * binary.objective, rel=1e-5)


def test_basis_projection_is_exact_at_full_rank_and_close_below():
    grams, y = _three_class_problem(30, seed=2)
    roots = [np.linalg.eigh(g) for g in grams]
    factors = [v[:, -12:] * np.sqrt(np.clip(w[-12:], 0, None)) for w, v in roots]
    plain = solve_mkl_dual(factors, y)
    full = solve_mkl_dual(factors, y, basis_rank=30)  # n = 30 rows: 30 columns span the 36 columns' range
    np.testing.assert_allclose(full.beta, plain.beta, atol=1e-4)
    basis, blocks = joint_basis(factors, 30)
    for f, b in zip(factors, blocks, strict=True):
        np.testing.assert_allclose(basis @ b, f, atol=1e-8)
    coarse = solve_mkl_dual(factors, y, basis_rank=20)
    assert coarse.status == "optimal"
    assert np.abs(coarse.beta - plain.beta).max() < 0.05


def test_config_defaults_to_joint_and_stored_configs_load_as_one_vs_rest():
    from probfusion.config import GPMKLConfig
    from probfusion.errors import ConfigError
    from probfusion.options import MKLMulticlass

    assert GPMKLConfig().multiclass is MKLMulticlass.JOINT
    stored = GPMKLConfig().to_dict()
    del stored["multiclass"], stored["basis_rank"]
    legacy = GPMKLConfig.from_dict(stored)
    assert legacy.multiclass is MKLMulticlass.ONE_VS_REST
    assert legacy.basis_rank is None
    assert GPMKLConfig.from_dict(GPMKLConfig(basis_rank=None).to_dict()).basis_rank is None
    with pytest.raises(ConfigError, match="basis_rank"):
        GPMKLConfig(basis_rank=0)
