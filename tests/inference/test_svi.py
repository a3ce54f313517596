"""SVI on the Bayesian LMF head: planted-rank recovery, ELBO improvement, seed determinism, exact re-expression."""

from pathlib import Path

import pytest
import torch

from probfusion.config import SyntheticConfig
from probfusion.data.synthetic import make_planted_interaction
from probfusion.fusion.bayesian_lmf import BayesianLowRankFusion, HeadGuide, component_activations, head_logits
from probfusion.fusion.rank import read_components, summarise_rank
from probfusion.fusion.reexpression import canonical_gauge
from probfusion.inference.svi import fit_svi, realign_guide
from probfusion.runs.checkpoint import load_module_state


def _planted(rank, modalities=2, n=1000, seed=0):
    data = make_planted_interaction(
        SyntheticConfig(num_samples=n, num_modalities=modalities, dim=6, rank=rank), seed=seed
    )
    latents = [torch.as_tensor(data.views[m]).double() for m in data.modality_names]
    return latents, torch.as_tensor(data.labels)


def _fit(latents, labels, *, max_rank, steps, seed=0, realign_every=0):
    head = BayesianLowRankFusion(input_dims=[6] * len(latents), rank=max_rank, num_classes=2).double()
    guide = HeadGuide(model=head, guide="mean-field").double()
    result = fit_svi(
        head,
        guide,
        latents,
        labels,
        steps=steps,
        learning_rate=0.02,
        batch_size=256,
        seed=seed,
        realign_every=realign_every,
    )
    return head, guide, result


def test_planted_cp_rank_two_is_recovered_at_max_rank_eight():
    latents, labels = _planted(rank=2)
    _, guide, result = _fit(latents, labels, max_rank=8, steps=1500)
    draws = guide.sample(200, generator=torch.Generator().manual_seed(0))
    readout = read_components(component_activations(latents, draws), draws["theta"], threshold=0.005)
    # Planted shares for seed 0 are 0.989 / 0.011: the weak component is real and sits above 0.005.
    summary = summarise_rank(readout.shares, draws["precision"], threshold=0.005, readout=readout)
    assert summary["effective_rank"] == 2
    assert summary["effective_rank_interval"] == [2, 2]
    assert not result.realignments  # no re-expression by default
    # The two kept components hold the variance; removing any of the six others moves it by under 0.5%.
    assert sorted(c["removal_share"] for c in summary["components"])[-3] < 0.005
    accuracy = (head_logits(latents, draws).softmax(-1).mean(0).argmax(-1) == labels).double().mean()
    assert accuracy > 0.9  # labels are 10% noisy in logit units; a rank-2 fit gets ~95%


def test_elbo_improves():
    latents, labels = _planted(rank=1, n=400)
    _, _, result = _fit(latents, labels, max_rank=4, steps=400, realign_every=0)
    first, last = sum(result.elbo[:50]) / 50, sum(result.elbo[-50:]) / 50
    assert last > first + 100.0  # nats, on a full-data scale of n = 400


def test_same_seed_same_fit_and_global_rng_untouched():
    latents, labels = _planted(rank=1, n=200)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    _, guide_a, result_a = _fit(latents, labels, max_rank=3, steps=60, realign_every=20)
    after = torch.rand(1)
    _, guide_b, result_b = _fit(latents, labels, max_rank=3, steps=60, realign_every=20)
    assert torch.equal(before, after)
    assert torch.equal(guide_a.loc, guide_b.loc)
    assert result_a.elbo == result_b.elbo


def _spread_guide(modalities, kind, seed):
    """A guide far from its initialisation: sharp logits, components of unequal size, scales 0.01 to 0.5."""
    head = BayesianLowRankFusion(input_dims=[4] * modalities, rank=5, num_classes=3).double()
    guide = HeadGuide(model=head, guide=kind).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sizes = torch.linspace(0.3, 1.6, 5, dtype=torch.float64)[torch.randperm(5, generator=g)]
        sites = {n: torch.randn(shape, generator=g, dtype=torch.float64) for n, shape in head.site_shapes().items()}
        for n in sites:
            if n.startswith("factor_"):
                sites[n] = sites[n] / sites[n].norm(dim=-1, keepdim=True) * 1.5 * sizes.unsqueeze(-1)
            elif n == "theta":
                sites[n] = sites[n] * 1.5 * sizes
        sites["precision"] = sites["precision"].exp()
        guide.loc.copy_(guide.pack(sites))
        guide.raw_scale.copy_(torch.empty(guide.size, dtype=torch.float64).uniform_(-4.6, -0.4, generator=g))
        guide.cov_factor.copy_(0.5 * torch.randn(guide.cov_factor.shape, generator=g, dtype=torch.float64))
    return guide


@torch.no_grad()
def _predictive(guide, latents, seed, draws=100_000):
    g, total = torch.Generator().manual_seed(seed), 0.0
    for _ in range(draws // 20_000):
        total = total + head_logits(latents, guide.sample(20_000, generator=g)).softmax(-1).sum(0)
    return total / draws


def _means(guide):
    return {k: v.detach().clone() for k, v in guide.means().items()}


def test_realignment_keeps_the_posterior_predictive():
    # Acceptance (issue 14): the predictive under q moves by at most 0.01. Leaving the scales and covariance
    # factor at their old indices moves it by 0.18 on this guide (0.3 on fitted ones); 100k independent draws
    # per side, so the 0.005 measured here is Monte Carlo error (the exact map is checked in the next test).
    modalities = 3
    guide = _spread_guide(modalities, "low-rank", seed=modalities)
    g = torch.Generator().manual_seed(0)
    latents = [torch.randn(40, 4, generator=g, dtype=torch.float64) for _ in range(modalities)]
    before = _predictive(guide, latents, seed=1)
    means = _means(guide)
    assert before.max() > 0.9  # sharp enough that mis-indexed scales would show
    components, change = realign_guide(guide, balance=True)
    after = _predictive(guide, latents, seed=2)
    assert components == 5
    assert change < 1e-12
    assert float((before - after).abs().max()) <= 0.01
    # White box: the new q is the image of the old one under u -> A u (A: permutation times positive scales).
    gauge = canonical_gauge([means[f"factor_{k}"] for k in range(modalities)], means["theta"])
    assert gauge.order.tolist() != list(range(5))  # the components really moved
    new = _means(guide)
    norms = torch.stack([new[f"factor_{k}"].norm(dim=-1) for k in range(modalities)] + [new["theta"].norm(dim=0)])
    assert torch.allclose(norms, norms[:1].expand_as(norms))  # balanced
    assert torch.allclose(new["precision"], means["precision"][gauge.order])
    for k in range(modalities):
        assert torch.allclose(new[f"factor_{k}"], means[f"factor_{k}"][gauge.order] * gauge.scales[k].unsqueeze(-1))


@pytest.mark.parametrize(("kind", "balance"), [("mean-field", True), ("low-rank", True), ("low-rank", False)])
def test_realignment_maps_scales_and_covariance_factor_with_their_components(kind, balance):
    guide = _spread_guide(2, kind, seed=5)
    with torch.no_grad():
        means = _means(guide)
        gauge = canonical_gauge([means["factor_0"], means["factor_1"]], means["theta"])
        scales = gauge.scales if balance else [torch.ones(5, dtype=torch.float64)] * 3

        def blocks(q):  # per-site diagonal scales `(*shape)` and covariance-factor columns `(width, *shape)`
            scales = {n: v[0].clone() for n, v in q.unpack(q.scale().unsqueeze(0), constrain=False).items()}
            return scales, {n: v.clone() for n, v in q.unpack(q.covariance_factor().T, constrain=False).items()}

        (scale_old, cov_old), _ = blocks(guide), realign_guide(guide, balance=balance)
        scale_new, cov_new = blocks(guide)
    for m, name in enumerate(["factor_0", "factor_1"]):
        assert torch.allclose(_means(guide)[name], means[name][gauge.order] * scales[m].unsqueeze(-1))
        assert torch.allclose(scale_new[name], scale_old[name][gauge.order] * scales[m].unsqueeze(-1))
        assert torch.allclose(cov_new[name], cov_old[name][:, gauge.order] * scales[m].unsqueeze(-1))
    assert torch.allclose(scale_new["theta"], scale_old["theta"][:, gauge.order] * scales[2])
    assert torch.allclose(cov_new["theta"], cov_old["theta"][:, :, gauge.order] * scales[2])
    assert torch.allclose(scale_new["precision"], scale_old["precision"][gauge.order])
    assert torch.equal(cov_new["bias"], cov_old["bias"])


def test_low_rank_guide_fits_as_well_as_mean_field():
    # The low-rank family holds the mean-field one (C = 0), so SVI should reach about its ELBO and accuracy. With
    # the factor F stored in absolute units (before 2026-12-03) Adam's steps of 0.02 on it dwarfed the 0.02
    # scales: on four modalities the ELBO ended at -1055 against -455 and the accuracy at 0.52 against 0.90.
    latents, labels = _planted(rank=2, modalities=4)
    fits = {}
    for kind in ("mean-field", "low-rank"):
        head = BayesianLowRankFusion(input_dims=[6] * 4, rank=8, num_classes=2).double()
        guide = HeadGuide(model=head, guide=kind).double()
        result = fit_svi(head, guide, latents, labels, steps=600, learning_rate=0.02, batch_size=256, seed=0)
        with torch.no_grad():
            draws = guide.sample(200, generator=torch.Generator().manual_seed(1))
            probs = head_logits(latents, draws).softmax(-1).mean(0)
        fits[kind] = (sum(result.elbo[-50:]) / 50, float((probs.argmax(-1) == labels).double().mean()))
    assert fits["mean-field"][1] > 0.85  # the problem is learnable at this budget
    assert fits["low-rank"][0] > fits["mean-field"][0] - 100  # measured -499 against -455
    assert fits["low-rank"][1] > fits["mean-field"][1] - 0.03


def test_low_rank_guide_draws_match_its_distribution_and_an_old_absolute_factor_loads_as_it_was():
    head = BayesianLowRankFusion(input_dims=[3, 4], rank=3, num_classes=2).double()
    guide = HeadGuide(model=head, guide="low-rank").double()
    guide.initialise(generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        guide.raw_scale.uniform_(-3.0, 0.0, generator=torch.Generator().manual_seed(1))
        # sample() and distribution() describe one covariance: sample() moments against F F^T + diag(sigma^2).
        many = guide.sample(200_000, generator=torch.Generator().manual_seed(2))
        flat = torch.cat([(v.log() if n == "precision" else v).reshape(200_000, -1) for n, v in many.items()], -1)
        expected = guide.distribution().covariance_matrix
    assert torch.allclose(torch.cov(flat.T), expected, atol=0.02 * float(expected.abs().max()))
    # A file written before C was relative holds F = diag(sigma) C and no relative_factor; it loads as the same q.
    state = {k: v.clone() for k, v in guide.state_dict().items() if k != "relative_factor"}
    state["cov_factor"] = guide.covariance_factor().detach().clone()
    loaded = HeadGuide(model=head, guide="low-rank").double()
    load_module_state(loaded, state, prefix="", source=Path("old-run/weights.safetensors"))
    assert torch.allclose(loaded.distribution().covariance_matrix, expected)
    assert float(loaded.relative_factor) == 1.0
