import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import nnls
from sklearn.svm import SVC

from probfusion.baselines.kernels import gram, kernel_scale
from probfusion.baselines.mkl import solve_mkl_dual
from probfusion.baselines.simple_mkl import simple_mkl
from probfusion.errors import InputDataError


def _problem(n, *, strengths, seed):
    """Binary labels; modality m carries the label with the given strength (0: pure noise)."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    grams = []
    for strength in strengths:
        x = rng.normal(size=(n, 2))
        x[:, 0] += strength * (2 * y - 1)
        t = torch.as_tensor(x)
        grams.append(gram(t, t, kind="rbf", scale=kernel_scale(t, kind="rbf")).numpy())
    return grams, y


def _svm_dual(kernel, y, svm_c):
    """Lanckriet's objective 2 1'a - a'Ga at the SVM optimum, by libsvm (independent of cvxpy)."""
    svc = SVC(C=svm_c, kernel="precomputed", tol=1e-10, shrinking=False).fit(kernel, y)
    coef = np.zeros(len(y))
    coef[svc.support_] = svc.dual_coef_[0]
    return 2 * np.abs(coef).sum() - coef @ kernel @ coef


def _brute_force(grams, y, svm_c, step):
    """Grid search over the simplex for the weights that minimise the SVM dual optimum (the MKL min-max)."""
    m = len(grams)
    ticks = np.arange(0, 1 + 1e-9, step)
    best = (np.inf, None)
    for head in itertools.product(ticks, repeat=m - 1):
        if sum(head) > 1 + 1e-9:
            continue
        mu = np.array([*head, 1 - sum(head)])
        value = _svm_dual(np.tensordot(mu, np.stack(grams), axes=1), y, svm_c)
        best = min(best, (value, mu), key=lambda b: b[0])
    return best


@pytest.mark.parametrize(("strengths", "step"), [((1.2, 0.6), 0.005), ((1.0, 0.7, 0.0), 0.02)])
def test_weights_match_brute_force_search_over_the_simplex(strengths, step):
    grams, y = _problem(36, strengths=strengths, seed=3)
    result = solve_mkl_dual(grams, y, svm_c=1.0)
    value, mu = _brute_force(grams, y, 1.0, step)
    assert result.status == "optimal"
    # Unit-diagonal kernels and trace c = n: the weights lie on the simplex.
    assert result.beta.sum() == pytest.approx(1.0, abs=1e-6)
    # The optimum is the grid minimum up to the grid's resolution; the weights to a few grid steps.
    assert result.objective <= value + 1e-6
    assert result.objective == pytest.approx(value, rel=2e-3)
    np.testing.assert_allclose(result.beta, mu, atol=3 * step)


def test_weights_match_simple_mkl_reference_to_1e3():
    grams, y = _problem(150, strengths=(0.8, 0.6, 0.0), seed=1)
    cone = solve_mkl_dual(grams, y, svm_c=1.0)
    reference = simple_mkl(grams, y, svm_c=1.0)
    assert reference.gap < 1e-6
    np.testing.assert_allclose(cone.beta, reference.beta, atol=1e-3)
    assert cone.objective == pytest.approx(reference.objective, rel=1e-4)


def test_pure_noise_modality_gets_weight_below_005():
    grams, y = _problem(200, strengths=(1.5, 0.0), seed=2)
    # At the default C = 1 (and below); a large C (10) lets the SVM memorise overlapping points with the noise
    # kernel (weight about 0.2 here), the known cost of a hard margin.
    for svm_c in (0.1, 1.0):
        assert solve_mkl_dual(grams, y, svm_c=svm_c).beta[1] < 0.05
    aligned = solve_mkl_dual(grams, y, formulation="alignment")
    assert aligned.beta[1] < 0.05


def test_factor_dense_and_gram_inputs_agree():
    grams, y = _problem(60, strengths=(1.0, 0.5), seed=4)
    roots = []
    for g in grams:
        values, vectors = np.linalg.eigh(g)
        roots.append(vectors * np.sqrt(np.clip(values, 0, None)))
    by_gram = solve_mkl_dual(grams, y)
    by_factor = solve_mkl_dual([r[:, -59:] for r in roots], y)
    dense = solve_mkl_dual(grams, y, dense=True)
    np.testing.assert_allclose(by_gram.beta, by_factor.beta, atol=1e-4)
    np.testing.assert_allclose(by_gram.beta, dense.beta, atol=1e-4)


def test_alignment_matches_nonnegative_least_squares_reference():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 50)
    onehot = np.eye(3)[y]
    grams = []
    for strength in (1.0, 0.4, 0.0):
        x = rng.normal(size=(50, 2)) + strength * onehot[:, :2]
        grams.append(x @ x.T)
    centre = np.eye(50) - 1 / 50
    kc = [centre @ g @ centre for g in grams]
    target = centre @ onehot @ onehot.T @ centre
    gram_m = np.array([[np.sum(a * b) for b in kc] for a in kc])
    a = np.array([np.sum(k * target) for k in kc])
    # min v'Mv - 2a'v over v >= 0 is NNLS on ||R v - R^-T a|| with M = R'R.
    r = np.linalg.cholesky(gram_m).T
    v, _ = nnls(r, np.linalg.solve(r.T, a))
    expected = v * 50 / (v @ np.array([np.trace(g) for g in grams]))
    result = solve_mkl_dual(grams, y, formulation="alignment")
    np.testing.assert_allclose(result.beta, expected, rtol=1e-4, atol=1e-8)


def test_multiclass_one_vs_rest_averages_per_class_weights():
    grams, y = _problem(60, strengths=(1.0, 0.5), seed=6)
    y3 = np.where(np.arange(60) % 3 == 0, 2, y)
    result = solve_mkl_dual(grams, y3, multiclass="one-vs-rest")
    assert result.per_problem.shape == (3, 2)
    np.testing.assert_allclose(result.beta, result.per_problem.mean(axis=0))


def test_single_class_is_an_input_error():
    grams, _ = _problem(10, strengths=(1.0, 0.5), seed=0)
    with pytest.raises(InputDataError, match="at least two"):
        solve_mkl_dual(grams, np.zeros(10, dtype=int))
