"""Re-expressions of the head's components: the exact gauge, and the point refit (SVD for M = 2, CP-ALS)."""

import pytest
import torch

from probfusion.fusion.bayesian_lmf import head_logits
from probfusion.fusion.reexpression import canonical_gauge, reexpress_components


def _redundant_head(dims, classes, true_rank, copies, generator):
    """A head whose ``true_rank * copies`` components are rescaled copies of ``true_rank`` distinct ones."""
    factors = [torch.randn(true_rank, d + 1, generator=generator, dtype=torch.float64) for d in dims]
    theta = torch.randn(classes, true_rank, generator=generator, dtype=torch.float64)
    weights = torch.rand(copies, true_rank, generator=generator, dtype=torch.float64) + 0.5
    weights = weights / weights.sum(0)  # the copies of a component sum to it
    big = [f.repeat(copies, 1) for f in factors]
    big_theta = (theta.unsqueeze(0) * weights.unsqueeze(1)).permute(1, 0, 2).reshape(classes, copies * true_rank)
    return big, big_theta


def _probs(latents, factors, theta, bias):
    sites = {f"factor_{k}": f.unsqueeze(0) for k, f in enumerate(factors)}
    sites.update(theta=theta.unsqueeze(0), bias=bias.unsqueeze(0))
    return head_logits(latents, sites).softmax(-1)[0]


def test_svd_reexpression_keeps_the_function_and_collapses_copies_for_m2():
    g = torch.Generator().manual_seed(0)
    factors, theta = _redundant_head((4, 5), 2, true_rank=2, copies=4, generator=g)
    bias = torch.randn(2, generator=g, dtype=torch.float64)
    latents = [
        torch.randn(50, 4, generator=g, dtype=torch.float64),
        torch.randn(50, 5, generator=g, dtype=torch.float64),
    ]
    result = reexpress_components(factors, theta, tolerance=1e-8)
    assert result.rank == 2
    assert result.relative_error < 1e-10
    assert bool((result.theta[:, 2:] == 0).all())
    assert all(bool((f[2:] == 0).all()) for f in result.factors)
    before, after = _probs(latents, factors, theta, bias), _probs(latents, result.factors, result.theta, bias)
    assert torch.allclose(before, after, atol=1e-10)


def test_svd_reexpression_is_exact_even_without_redundancy():
    g = torch.Generator().manual_seed(1)
    factors = [torch.randn(3, 5, generator=g, dtype=torch.float64) for _ in range(2)]
    theta = torch.randn(2, 3, generator=g, dtype=torch.float64)
    latents = [torch.randn(30, 4, generator=g, dtype=torch.float64) for _ in range(2)]
    result = reexpress_components(factors, theta, tolerance=1e-12)
    bias = torch.zeros(2, dtype=torch.float64)
    assert result.rank == 3
    assert torch.allclose(_probs(latents, factors, theta, bias), _probs(latents, result.factors, result.theta, bias))


@pytest.mark.parametrize(("dims", "classes"), [((3, 4, 2), 3), ((3, 3), 4)], ids=["M3", "M2-four-classes"])
def test_cp_refit_reduces_redundancy_and_keeps_the_function(dims, classes):
    g = torch.Generator().manual_seed(2)
    factors, theta = _redundant_head(dims, classes, true_rank=2, copies=3, generator=g)
    bias = torch.randn(classes, generator=g, dtype=torch.float64)
    latents = [torch.randn(40, d, generator=g, dtype=torch.float64) for d in dims]
    result = reexpress_components(factors, theta, tolerance=1e-6, iterations=200)
    assert result.rank == 2  # 6 redundant components become the 2 distinct ones
    assert result.relative_error < 1e-6
    before, after = _probs(latents, factors, theta, bias), _probs(latents, result.factors, result.theta, bias)
    assert torch.allclose(before, after, atol=1e-5)


def test_cp_refit_keeps_everything_when_no_smaller_rank_fits():
    g = torch.Generator().manual_seed(3)
    factors = [torch.randn(3, 4, generator=g, dtype=torch.float64) for _ in range(3)]
    theta = torch.randn(3, 3, generator=g, dtype=torch.float64)
    result = reexpress_components(factors, theta, tolerance=1e-6)
    assert result.rank == 3
    assert result.relative_error == 0.0


def test_canonical_gauge_keeps_the_function_sorts_and_balances():
    g = torch.Generator().manual_seed(5)
    factors = [torch.randn(4, d + 1, generator=g, dtype=torch.float64) for d in (3, 2)]
    factors = [f * torch.rand(4, 1, generator=g, dtype=torch.float64) for f in factors]
    theta = torch.randn(3, 4, generator=g, dtype=torch.float64)
    gauge = canonical_gauge(factors, theta)
    new = [f[gauge.order] * s.unsqueeze(-1) for f, s in zip(factors, gauge.scales, strict=False)]
    new_theta = theta[:, gauge.order] * gauge.scales[-1]
    latents = [torch.randn(20, d, generator=g, dtype=torch.float64) for d in (3, 2)]
    bias = torch.zeros(3, dtype=torch.float64)
    assert torch.allclose(_probs(latents, factors, theta, bias), _probs(latents, new, new_theta, bias), atol=1e-12)
    assert torch.allclose(torch.stack(gauge.scales).prod(0), torch.ones(4, dtype=torch.float64))
    weight = torch.stack([f.norm(dim=-1) for f in new]).prod(0) * (new_theta - new_theta.mean(0)).norm(dim=0)
    assert torch.equal(weight.argsort(descending=True), torch.arange(4))
