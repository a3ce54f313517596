"""The Laplace route: the closed-form GGN blocks against autograd, the evidence fixed point, the linearised
predictive, and a fit that keeps its first stage's accuracy."""

from __future__ import annotations

import torch
from torch.func import jacrev

from probfusion.fusion.bayesian_lmf import BayesianLowRankFusion, head_logits
from probfusion.inference.laplace import (
    component_sites,
    fit_laplace,
    ggn_blocks,
    linearised_logits,
    sites_from_components,
)


def _sites(generator: torch.Generator, dims: list[int], rank: int, classes: int) -> dict[str, torch.Tensor]:
    def draw(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    sites = {f"factor_{k}": draw(rank, d + 1) for k, d in enumerate(dims)}
    sites.update(theta=draw(classes, rank), bias=draw(classes))
    return sites


def test_ggn_blocks_match_autograd_jacobians() -> None:
    generator = torch.Generator().manual_seed(0)
    dims, rank, classes, n = [2, 3, 2], 3, 4, 7
    latents = [torch.randn(n, d, generator=generator, dtype=torch.float64) for d in dims]
    sites = _sites(generator, dims, rank, classes)
    blocks, bias_block = ggn_blocks(latents, sites)

    def logits_of(components: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        current = {**sites_from_components(components, dims), "bias": bias}
        return head_logits(latents, {k: v.unsqueeze(0) for k, v in current.items()})[0]

    components = component_sites(sites, len(dims))
    jac_c, jac_b = jacrev(logits_of, argnums=(0, 1))(components, sites["bias"])  # (n, c, r, n_i), (n, c, c)
    probs = logits_of(components, sites["bias"]).softmax(-1)
    curvature = torch.diag_embed(probs) - probs.unsqueeze(-1) * probs.unsqueeze(-2)  # (n, c, c)
    torch.testing.assert_close(blocks, torch.einsum("ncia,ncd,ndib->iab", jac_c, curvature, jac_c))
    torch.testing.assert_close(bias_block, torch.einsum("nca,ncd,ndb->ab", jac_b, curvature, jac_b))


def test_round_trip_of_component_layout() -> None:
    generator = torch.Generator().manual_seed(1)
    sites = _sites(generator, [2, 4], 3, 5)
    back = sites_from_components(component_sites(sites, 2), [2, 4])
    for name in ("factor_0", "factor_1", "theta"):
        torch.testing.assert_close(back[name], sites[name])


def test_evidence_fixed_point_and_prior_scales() -> None:
    """At convergence lambda_i (||w_i||^2 + tr Sigma_i + 2 b0) = n_i + 2 (a0 - 1); larger scales narrow Sigma."""
    generator = torch.Generator().manual_seed(2)
    dims, rank, classes, n = [3, 3], 4, 3, 200
    latents = [torch.randn(n, d, generator=generator) for d in dims]
    start = {k: v.float() for k, v in _sites(generator, dims, rank, classes).items()}
    head = BayesianLowRankFusion(input_dims=dims, rank=rank, num_classes=classes, rank_prior="ard", prior_shape=2.0)
    fits = fit_laplace(
        head,
        latents,
        start=start,
        start_precision=torch.ones(rank),
        rounds=500,
        scales=(1.0, 10.0),
    )
    fit, narrow = fits
    covariance = fit.component_tril.double() @ fit.component_tril.double().transpose(-1, -2)
    norms = component_sites({k: v.double() for k, v in fit.mean.items()}, 2).square().sum(-1)
    size = sum(d + 1 for d in dims) + classes
    lhs = fit.precision.double() * (norms + covariance.diagonal(dim1=-2, dim2=-1).sum(-1) + 2 * 1.0)
    torch.testing.assert_close(lhs, torch.full_like(lhs, size + 2 * (2.0 - 1)), rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(narrow.precision, 10 * fit.precision)
    assert (narrow.component_tril.diagonal(dim1=-2, dim2=-1) < fit.component_tril.diagonal(dim1=-2, dim2=-1)).all()
    for name, value in start.items():
        torch.testing.assert_close(fit.mean[name], value)  # post-hoc: the mean is the start


def test_linearised_logits_match_a_finite_difference() -> None:
    """logits(theta* + t delta) = linearised(t delta) + O(t^2): the error falls as t^2."""
    generator = torch.Generator().manual_seed(3)
    dims, rank, classes = [2, 3, 2], 3, 4
    latents = [torch.randn(6, d, generator=generator, dtype=torch.float64) for d in dims]
    mean = _sites(generator, dims, rank, classes)
    direction = {k: v.unsqueeze(0) for k, v in _sites(generator, dims, rank, classes).items()}
    errors = []
    for step in (1e-2, 1e-3):
        offsets = {k: step * v for k, v in direction.items()}
        exact = head_logits(latents, {k: mean[k].unsqueeze(0) + offsets[k] for k in mean})
        errors.append(float((exact - linearised_logits(latents, mean, offsets)).abs().max()))
    assert errors[1] < errors[0] / 50  # second order: 100x smaller for a 10x smaller step


def test_the_ggn_summed_in_row_chunks_equals_one_pass(monkeypatch) -> None:
    import probfusion.inference.laplace as laplace

    generator = torch.Generator().manual_seed(4)
    dims, rank, classes, n = [2, 2], 3, 3, 50
    latents = [torch.randn(n, d, generator=generator) for d in dims]
    start = {k: v.float() for k, v in _sites(generator, dims, rank, classes).items()}
    head = BayesianLowRankFusion(input_dims=dims, rank=rank, num_classes=classes, rank_prior="gaussian")
    whole = fit_laplace(head, latents, start=start, start_precision=torch.ones(rank), rounds=1)[0]
    monkeypatch.setattr(laplace, "GGN_CHUNK_ELEMENTS", 7 * rank * (2 * 3 + classes))  # chunks of 7 rows
    chunked = fit_laplace(head, latents, start=start, start_precision=torch.ones(rank), rounds=1)[0]
    torch.testing.assert_close(chunked.component_tril, whole.component_tril)
    torch.testing.assert_close(chunked.bias_tril, whole.bias_tril)


def test_a_laplace_fit_chooses_its_prior_scale_alike_whatever_the_global_rng(tmp_path) -> None:
    """The validation draws that pick the prior scale are seeded: two fits of one config give equal metrics."""
    import dataclasses

    from probfusion import fit
    from tests.helpers import small_config, write_separable_npz

    data = write_separable_npz(tmp_path / "sep.npz", n=240)
    config = small_config(str(data), epochs=8)
    config = dataclasses.replace(
        config,
        fusion=dataclasses.replace(config.fusion, rank_prior="ard", linear_pool=False),
        bayes=dataclasses.replace(config.bayes, inference="laplace", posterior_samples=8),
    )
    metrics = []
    for k in range(2):
        torch.manual_seed(1000 + k)  # a different global RNG state before each fit
        run = fit(config, tmp_path / f"run-{k}")
        metrics.append({key: run.metrics[key] for key in ("train", "val", "test", "laplace_prior_scale")})
    assert metrics[0] == metrics[1]
