"""NUTS on the head: draw shapes, seeding, and agreement with SVI on label-invariant quantities."""

import pytest
import torch

from probfusion.config import SyntheticConfig
from probfusion.data.synthetic import make_planted_interaction
from probfusion.fusion.bayesian_lmf import BayesianLowRankFusion, HeadGuide, component_activations
from probfusion.fusion.rank import variance_shares
from probfusion.inference.mcmc import run_nuts_head
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
    nuts = run_nuts_head(head, latents, labels, num_warmup=60, num_draws=60, num_chains=2, seed=0, max_tree_depth=5)
    assert nuts.draws["factor_0"].shape == (2, 60, 2, 3)
    assert nuts.draws["precision"].shape == (2, 60, 2)
    assert nuts.flat()["theta"].shape == (120, 2, 2)
    guide = HeadGuide(model=head, guide="mean-field").double()
    fit_svi(head, guide, latents, labels, steps=1000, learning_rate=0.02, batch_size=80, seed=0, realign_every=100)
    svi = guide.sample(400, generator=torch.Generator().manual_seed(0))
    nuts_shares, nuts_log_precision = _sorted(latents, nuts.flat())
    svi_shares, svi_log_precision = _sorted(latents, svi)
    # Tolerances: sorted shares within 0.05 (absolute; seen: 0.987 vs 0.999). The active component's precision
    # within a factor 2 (seen: log 1.26 vs 0.81; mean-field SVI under-estimates variances, so it over-estimates
    # precisions). The pruned component's precision is prior-dominated (a funnel): both methods only need to
    # put it above the active one's (seen: NUTS 1.1, SVI 2.7).
    assert torch.allclose(nuts_shares, svi_shares, atol=0.05), (nuts_shares, svi_shares)
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
