"""NUTS on the head: draw shapes, seeding, and agreement with SVI on label-invariant quantities."""

import math

import pytest
import torch
from pyro.infer.mcmc.util import initialize_model

from probfusion.config import SyntheticConfig
from probfusion.data.synthetic import make_planted_interaction
from probfusion.errors import ConfigError
from probfusion.fusion.bayesian_lmf import BayesianLowRankFusion, HeadGuide, component_activations
from probfusion.fusion.rank import variance_shares
from probfusion.inference.mcmc import non_centred_model, recentre, run_nuts_head
from probfusion.inference.svi import fit_svi


@pytest.fixture(scope="module")
def tiny():
    data = make_planted_interaction(SyntheticConfig(num_samples=80, dim=2, rank=1, noise=0.1), seed=1)
    latents = [torch.as_tensor(data.views[m]).double() for m in data.modality_names]
    return latents, torch.as_tensor(data.labels)


def _sorted(latents, draws):
    shares = variance_shares(component_activations(latents, draws), draws["theta"]).detach()
    order = shares.argsort(-1, descending=True)
    return shares.gather(-1, order).mean(0), draws["precision"].detach().gather(-1, order).log().mean(0)


def test_nuts_and_svi_agree_on_sorted_shares_and_precisions(tiny):
    latents, labels = tiny
    head = BayesianLowRankFusion(input_dims=[2, 2], rank=2, num_classes=2).double()
    # 300 warmup steps and 200 draws: with 100 / 60, the pinned dependency set (constraints.txt, 2026-12-02) left
    # one chain unconverged (spare share 0.21 vs 0.07 in the other); at 300 / 200 the chains give 0.013-0.065.
    nuts = run_nuts_head(head, latents, labels, num_warmup=300, num_draws=200, num_chains=2, seed=0, max_tree_depth=5)
    assert nuts.draws["factor_0"].shape == (2, 200, 2, 3)
    assert nuts.draws["precision"].shape == (2, 200, 2)
    assert nuts.flat()["theta"].shape == (400, 2, 2)
    guide = HeadGuide(model=head, guide="mean-field").double()
    fit_svi(head, guide, latents, labels, steps=1000, learning_rate=0.02, batch_size=80, seed=0, realign_every=100)
    svi = guide.sample(400, generator=torch.Generator().manual_seed(0))
    nuts_shares, nuts_log_precision = _sorted(latents, nuts.flat())
    svi_shares, svi_log_precision = _sorted(latents, svi)
    # Tolerances: sorted shares within 0.1 (absolute). The spare component sits in ARD's funnel, so its share per
    # NUTS chain is chaotic in the float details of the machine: 0.013 to 0.065 over chains of seeds 0-3 on one
    # machine (0.02 on another; SVI 0.002), which a 0.05 tolerance did not cover. A broken sampler or guide gives
    # shares near 0.5 / 0.5 or an unconverged chain's 0.2, outside 0.1. The active component's precision
    # within a factor 2 (seen: log 1.26 vs 0.81; mean-field SVI under-estimates variances, so it over-estimates
    # precisions). The pruned component's precision is prior-dominated (a funnel): both methods only need to
    # put it above the active one's (seen: NUTS 1.1, SVI 2.7).
    assert torch.allclose(nuts_shares, svi_shares, atol=0.1), (nuts_shares, svi_shares)
    assert abs(nuts_log_precision[0] - svi_log_precision[0]) < 0.7, (nuts_log_precision, svi_log_precision)
    assert nuts_log_precision[1] > nuts_log_precision[0]
    assert svi_log_precision[1] > svi_log_precision[0]
    assert nuts_shares[0] > 0.9  # the planted rank is 1


def test_nuts_is_seeded_and_leaves_the_global_rng_alone(tiny):
    latents, labels = tiny
    head = BayesianLowRankFusion(input_dims=[2, 2], rank=1, num_classes=2, rank_prior="gaussian").double()
    torch.manual_seed(7)
    expected = torch.rand(1)
    torch.manual_seed(7)
    a = run_nuts_head(head, latents, labels, num_warmup=10, num_draws=5, num_chains=1, seed=3, max_tree_depth=4)
    assert torch.equal(torch.rand(1), expected)
    b = run_nuts_head(head, latents, labels, num_warmup=10, num_draws=5, num_chains=1, seed=3, max_tree_depth=4)
    assert "precision" not in a.draws
    assert all(torch.equal(a.draws[k], b.draws[k]) for k in a.draws)


def test_non_centred_sampling_returns_the_models_sites(tiny):
    latents, labels = tiny
    head = BayesianLowRankFusion(input_dims=[2, 2], rank=2, num_classes=2).double()
    run = run_nuts_head(head, latents, labels, num_warmup=4, num_draws=4, num_chains=1, seed=0, max_tree_depth=3)
    assert run.parameterisation == "non-centred"
    assert {k: tuple(v.shape[2:]) for k, v in run.draws.items()} == head.site_shapes()
    assert len(run.divergences) == len(run.acceptance) == 1
    assert isinstance(run.divergences[0], int)
    # recentre is w = lambda^(-1/2) eps under the model's own priors, vectorised over draws.
    g = torch.Generator().manual_seed(0)
    shapes = head.site_shapes()
    eps = {f"{k}_decentered": torch.randn(5, *s, generator=g, dtype=torch.float64) for k, s in shapes.items()}
    precision = torch.rand(5, 2, generator=g, dtype=torch.float64) + 0.5
    sites = recentre(head, {**eps, "precision": precision, "bias": eps["bias_decentered"]})
    assert torch.allclose(sites["factor_1"], eps["factor_1_decentered"] * precision.rsqrt().unsqueeze(-1))
    assert torch.allclose(sites["theta"], eps["theta_decentered"] * precision.rsqrt().unsqueeze(-2))
    gaussian = BayesianLowRankFusion(input_dims=[2, 2], rank=1, num_classes=2, rank_prior="gaussian").double()
    fixed = run_nuts_head(gaussian, latents, labels, num_warmup=2, num_draws=4, num_chains=1, seed=0, max_tree_depth=2)
    assert fixed.parameterisation == "centred"  # no funnel without random precisions
    with pytest.raises(ConfigError, match="at least 4 draws"):
        run_nuts_head(gaussian, latents, labels, num_warmup=2, num_draws=3, num_chains=1, seed=0)


def _largest_curvature(model, latents, labels, log_precision: float, eps: dict) -> float:
    """Largest Hessian eigenvalue of the sampler's potential at lambda = exp(log_precision), w = lambda^(-1/2) eps."""
    _, potential, _, _ = initialize_model(model, model_args=(latents, labels))
    scale = math.exp(-0.5 * log_precision)
    point = {"precision": torch.full((1,), log_precision, dtype=torch.float64), "bias": eps["bias"]}
    for name in ("factor_0", "factor_1", "theta"):
        decentred = name + "_decentered"
        point[decentred if model is not BASE else name] = eps[name] * (1.0 if model is not BASE else scale)
    names = list(point)
    sizes = [point[n].numel() for n in names]

    def flat_potential(flat):
        parts = dict(zip(names, flat.split(sizes), strict=True))
        return potential({n: parts[n].reshape(point[n].shape) for n in names})

    hessian = torch.autograd.functional.hessian(flat_potential, torch.cat([point[n].reshape(-1) for n in names]))
    return float(torch.linalg.eigvalsh(hessian).max())


BASE = BayesianLowRankFusion(input_dims=[2, 2], rank=1, num_classes=2, prior_shape=1.0, prior_rate=0.01).double()


def test_the_non_centred_potential_has_no_funnel(tiny):
    """Neal's funnel, measured where NUTS feels it: the curvature that sets the step size.

    Centred, the curvature in w is lambda itself, so the largest curvature grows about 25-fold from the funnel's
    mouth (log lambda = 2) to its neck (log lambda = 6, where ARD prunes): one step size cannot serve both.
    Non-centred it stays O(1) in eps; only the Gamma prior's own curvature b0 lambda in log lambda grows.
    (Sampling both ways did not show the divergence gap the issue expected; see studies/nuts_parameterisation.)
    """
    latents, labels = (z[:5] for z in tiny[0]), tiny[1][:5]
    latents = list(latents)
    g = torch.Generator().manual_seed(0)
    eps = {n: torch.randn(s, generator=g, dtype=torch.float64) for n, s in BASE.site_shapes().items()}
    growth = {}
    for label, model in (("centred", BASE), ("non-centred", non_centred_model(BASE))):
        neck, mouth = (_largest_curvature(model, latents, labels, u, eps) for u in (6.0, 2.0))
        growth[label] = neck / mouth
    assert growth["centred"] > 15, growth  # seen: 24.7
    assert growth["non-centred"] < 3, growth  # seen: 1.57
