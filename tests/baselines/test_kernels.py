import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from sklearn.metrics.pairwise import rbf_kernel

from probfusion.baselines.kernels import gram, kernel_factor, kernel_scale, median_bandwidth
from probfusion.errors import InputDataError


def _x(n=40, d=3, seed=0):
    return torch.as_tensor(np.random.default_rng(seed).normal(size=(n, d)))


def test_median_bandwidth_matches_scipy_pdist():
    x = _x()
    assert median_bandwidth(x) == pytest.approx(float(np.median(pdist(x.numpy()))), rel=1e-12)


def test_median_bandwidth_rejects_one_row():
    with pytest.raises(InputDataError, match="n >= 2"):
        median_bandwidth(_x(1))


def test_rbf_gram_matches_sklearn_and_has_unit_diagonal():
    x, z = _x(), _x(7, seed=1)
    s = kernel_scale(x, kind="rbf")
    expected = rbf_kernel(x.numpy(), z.numpy(), gamma=1.0 / (2 * s**2))
    np.testing.assert_allclose(gram(x, z, kind="rbf", scale=s).numpy(), expected, atol=1e-12)
    assert torch.allclose(gram(x, x, kind="rbf", scale=s).diagonal(), torch.ones(40, dtype=torch.float64))


def test_linear_kernel_has_unit_average_diagonal():
    x = _x() * 3.0
    k = gram(x, x, kind="linear", scale=kernel_scale(x, kind="linear"))
    assert float(k.diagonal().mean()) == pytest.approx(1.0, rel=1e-12)


def test_exact_factor_reproduces_the_gram_matrix():
    x = _x(30)
    s = kernel_scale(x, kind="rbf")
    factor = kernel_factor(x, kind="rbf", scale=s, max_rank=64, tolerance=1e-14)
    torch.testing.assert_close(factor @ factor.T, gram(x, x, kind="rbf", scale=s), atol=1e-8, rtol=0)


def test_nystrom_factor_is_close_on_a_smooth_kernel():
    x = _x(400, d=2)
    s = kernel_scale(x, kind="rbf")
    factor = kernel_factor(x, kind="rbf", scale=s, max_rank=40, generator=torch.Generator().manual_seed(0))
    k = gram(x, x, kind="rbf", scale=s)
    assert factor.shape == (400, 40) or factor.shape[1] < 40
    # A 2-d RBF kernel at the median bandwidth has a fast-decaying spectrum: 40 components leave < 1% error.
    assert float(torch.linalg.matrix_norm(factor @ factor.T - k) / torch.linalg.matrix_norm(k)) < 0.01
