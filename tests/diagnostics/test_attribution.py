"""Shapley modality shares, component shares and removals against independent references, at tiny sizes."""

import itertools
import math

import pytest
import torch

from probfusion.diagnostics.attribution import (
    ablation_from_draws,
    ablation_from_lmf,
    attribution_from_draws,
    attribution_from_lmf,
    component_contributions,
    modality_shapley,
)
from probfusion.fusion.bayesian_lmf import component_activations, head_logits
from probfusion.fusion.heads import ClassifierHead
from probfusion.fusion.lmf import LowRankFusion
from probfusion.fusion.rank import contribution_covariance, variance_shares


def _brute_force_shapley(p: torch.Tensor) -> torch.Tensor:
    """Shapley values by averaging marginal contributions over every ordering (independent of the code under test)."""
    n, m = p.shape
    mean = p.mean(0)

    def value(coalition):
        product = torch.ones(n, dtype=p.dtype)
        for k in range(m):
            product = product * (p[:, k] if k in coalition else mean[k])
        return float(product.var(unbiased=False))

    phi = torch.zeros(m, dtype=torch.float64)
    for order in itertools.permutations(range(m)):
        seen = set()
        for k in order:
            phi[k] += value(seen | {k}) - value(seen)
            seen.add(k)
    return phi / math.factorial(m)


@pytest.mark.parametrize("modalities", [2, 3, 4])
def test_shapley_matches_the_brute_force_definition_and_sums_to_the_variance(modalities):
    g = torch.Generator().manual_seed(modalities)
    p = (torch.randn(50, modalities, generator=g) + torch.randn(modalities, generator=g)).double()
    phi = modality_shapley(p)
    assert torch.allclose(phi, _brute_force_shapley(p), atol=1e-10)
    assert float(phi.sum()) == pytest.approx(float(p.prod(-1).var(unbiased=False)), rel=1e-12)


def test_a_constant_modality_gets_nothing_and_equal_roles_get_equal_shares():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, generator=g, dtype=torch.float64)
    constant = torch.stack([x, torch.full_like(x, 2.0)], dim=-1)
    assert modality_shapley(constant)[1] == pytest.approx(0.0, abs=1e-12)
    swapped = torch.stack([x, x.flip(0)], dim=-1)  # same distribution of values in both roles
    phi = modality_shapley(torch.stack([swapped, swapped.flip(-1)]))
    assert torch.allclose(phi[0], phi[1].flip(-1), atol=1e-12)


def test_independent_modalities_give_owens_shapley_effect():
    # phi_1 = sigma1^2 mu2^2 + sigma1^2 sigma2^2 / 2 for independent p1, p2 (Owen 2014), within sampling error.
    g = torch.Generator().manual_seed(1)
    n = 400_000
    p = torch.stack([1.0 + 2.0 * torch.randn(n, generator=g), 0.5 + 1.0 * torch.randn(n, generator=g)], -1).double()
    phi = modality_shapley(p)
    expected = torch.tensor([4 * 0.25 + 4 * 1 / 2, 1 * 1 + 4 * 1 / 2], dtype=torch.float64)
    assert torch.allclose(phi, expected, rtol=0.03)


def _draws(s=5, r=4, c=3, dims=(3, 2, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    draws = {f"factor_{k}": torch.randn(s, r, d + 1, generator=g) for k, d in enumerate(dims)}
    draws["theta"] = torch.randn(s, c, r, generator=g)
    draws["bias"] = torch.randn(s, c, generator=g)
    latents = [torch.randn(40, d, generator=g) for d in dims]
    return latents, draws


def test_attribution_shares_sum_to_one_and_components_use_the_rank_read_out():
    latents, draws = _draws()
    out = attribution_from_draws(latents, draws, ["a", "b", "c"])
    assert out.component_share.shape == (5, 4)
    assert out.modality_share.shape == (5, 4, 3)
    assert torch.allclose(out.modality_share.sum(-1), torch.ones(5, 4, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(out.joint_share.sum((-1, -2)), torch.ones(5, dtype=torch.float64), atol=1e-6)
    reference = variance_shares(component_activations(latents, draws), draws["theta"])
    assert torch.allclose(out.component_share, reference.double())
    rows = out.rows()
    assert len(rows) == 4 * 3
    assert {r["modality"] for r in rows} == {"a", "b", "c"}
    assert all(r["modality_share_lo"] <= r["modality_share"] <= r["modality_share_hi"] for r in rows)


def test_removing_a_component_changes_the_logits_by_its_contribution_and_its_share():
    latents, draws = _draws(seed=1)
    contributions, logits = component_contributions(latents, draws)
    assert torch.allclose(logits, head_logits(latents, draws), atol=1e-5)
    for i in range(4):  # independent path: the head with Theta's column i set to zero
        removed = dict(draws, theta=draws["theta"].clone())
        removed["theta"][..., i] = 0.0
        assert torch.allclose(head_logits(latents, removed) - logits, -contributions[..., i, :], atol=1e-5)
    ablation = ablation_from_draws(latents, draws, torch.zeros(40, dtype=torch.long))
    own = contribution_covariance(component_activations(latents, draws), draws["theta"]).diagonal(dim1=-2, dim2=-1)
    expected = (own / own.sum(-1, keepdim=True)).double().mean(0)  # removal variance, no cross terms
    assert torch.allclose(ablation.logit_variance_share, expected, atol=1e-6)
    assert ablation.logit_variance_share.sum() == pytest.approx(1.0)
    assert ((ablation.flip_rate >= 0) & (ablation.flip_rate <= 1)).all()


def test_a_component_with_zero_output_weight_changes_nothing_when_removed():
    latents, draws = _draws(seed=2)
    draws["theta"][..., 2] = 0.0
    ablation = ablation_from_draws(latents, draws)
    assert float(ablation.total_variation[2]) == pytest.approx(0.0, abs=1e-7)  # float32 softmax rounding
    assert float(ablation.flip_rate[2]) == 0.0
    assert float(ablation.logit_variance_share[2]) == 0.0
    assert torch.isnan(ablation.accuracy_drop).all()  # no labels given


def test_deterministic_lmf_attribution_and_removal_match_a_zeroed_factor():
    torch.manual_seed(0)
    fusion = LowRankFusion(input_dims=[3, 2], rank=3, output_dim=4)
    head = ClassifierHead(fused_dim=4, num_classes=3)
    latents = [torch.randn(30, 3), torch.randn(30, 2)]
    labels = torch.randint(3, (30,))
    attribution = attribution_from_lmf(latents, fusion, ["a", "b"])
    assert attribution.component_share.shape == (1, 3)
    assert attribution.modality_share.shape == (1, 3, 2)
    assert attribution.component_share.sum() == pytest.approx(1.0)
    assert torch.allclose(attribution.modality_share.sum(-1), torch.ones(1, 3, dtype=torch.float64))
    ablation = ablation_from_lmf(latents, fusion, head, labels)
    with torch.no_grad():
        probs = head(fusion(latents)).softmax(-1)
        for i in range(3):
            zeroed = LowRankFusion(input_dims=[3, 2], rank=3, output_dim=4)
            zeroed.load_state_dict(fusion.state_dict())
            zeroed.factors[0].data[i] = 0.0  # one zero factor removes the whole component
            other = head(zeroed(latents)).softmax(-1)
            tv = 0.5 * (other - probs).abs().sum(-1).mean()
            assert float(ablation.total_variation[i]) == pytest.approx(float(tv), abs=1e-6)
            drop = (probs.argmax(-1) == labels).double().mean() - (other.argmax(-1) == labels).double().mean()
            assert float(ablation.accuracy_drop[i]) == pytest.approx(float(drop), abs=1e-9)


def test_batching_over_draws_does_not_change_the_answers(monkeypatch):
    import probfusion.diagnostics.attribution as module

    latents, draws = _draws(s=7, seed=3)
    labels = torch.randint(3, (40,), generator=torch.Generator().manual_seed(0))
    whole_ablation = ablation_from_draws(latents, draws, labels)
    whole_attribution = attribution_from_draws(latents, draws, ["a", "b", "c"])
    monkeypatch.setattr(module, "_MAX_NUMBERS", 1000)  # forces batches of a draw or two
    batched_ablation = ablation_from_draws(latents, draws, labels)
    batched_attribution = attribution_from_draws(latents, draws, ["a", "b", "c"])
    for name in ("logit_variance_share", "total_variation", "flip_rate", "accuracy_drop"):
        assert torch.allclose(getattr(whole_ablation, name), getattr(batched_ablation, name), atol=1e-12)
    assert torch.allclose(whole_attribution.modality_share, batched_attribution.modality_share, atol=1e-12)
