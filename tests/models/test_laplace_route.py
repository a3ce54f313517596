"""The Laplace route end to end: it learns, keeps its first stage's accuracy, and round-trips through load_run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from probfusion import fit, load_run
from probfusion.config import BayesConfig, FusionConfig, TrainConfig
from probfusion.fusion.bayesian_lmf import component_activations, head_logits
from probfusion.fusion.seed_lmf import SeedFormFusion
from probfusion.inference.laplace import PRIOR_SCALES
from probfusion.options import InferenceKind
from tests.helpers import small_config, write_separable_npz


def test_laplace_fit_learns_and_round_trips(tmp_path: Path) -> None:
    data = write_separable_npz(tmp_path / "sep.npz", n=300, num_classes=3)
    config = dataclasses.replace(
        small_config(str(data), epochs=40),
        fusion=FusionConfig(rank=4, rank_prior="ard", linear_pool=False),  # the head's own predictive, below
        bayes=BayesConfig(inference="laplace", posterior_samples=32),
        train=TrainConfig(epochs=40, batch_size=64, patience=40),
    )
    run = fit(config, tmp_path / "run")
    metrics = run.metrics
    assert metrics["test"]["accuracy"] > 0.75  # three classes: chance is 1/3
    assert metrics["laplace_prior_scale"] in PRIOR_SCALES
    loaded = load_run(run.path)
    assert loaded.model.inference is InferenceKind.LAPLACE
    _, _, test = loaded.splits()
    data_t = loaded.tensors(test)
    views = {m: v.clone().requires_grad_(True) for m, v in data_t.views.items()}
    first = loaded.model.predictive_logits(views, 8, generator=torch.Generator().manual_seed(0))
    again = loaded.model.predictive_logits(views, 8, generator=torch.Generator().manual_seed(0))
    assert first.shape == (8, len(data_t.labels), 3)
    torch.testing.assert_close(first, again)
    first.sum().backward()  # attacks need the predictive's gradient in the inputs
    assert all(v.grad is not None and v.grad.abs().sum() > 0 for v in views.values())
    # The linearised predictive's mean logits are the MAP's (the first stage's head, loaded as the mean).
    with torch.no_grad():
        many = loaded.model.predictive_logits(data_t.views, 4000, generator=torch.Generator().manual_seed(1))
        encoded = loaded.model.jwae.encode(data_t.views)
        at_map = head_logits(
            [encoded[m] for m in loaded.model.modalities],
            {k: v.unsqueeze(0) for k, v in loaded.model._laplace_centre().items()},
        )[0]
    torch.testing.assert_close(many.mean(0), at_map, atol=0.15, rtol=0.0)


def test_seed_form_fusion_is_the_bayesian_head_at_one_parameter_set() -> None:
    torch.manual_seed(0)
    layer = SeedFormFusion(input_dims=[3, 2], rank=4)
    latents = [torch.randn(5, 3), torch.randn(5, 2)]
    expected = component_activations(latents, {k: v.unsqueeze(0) for k, v in layer.sites().items()})[0]
    product = (torch.cat([latents[0], torch.ones(5, 1)], 1) @ layer.factors[0].T) * (
        torch.cat([latents[1], torch.ones(5, 1)], 1) @ layer.factors[1].T
    )
    torch.testing.assert_close(layer(latents), expected)
    torch.testing.assert_close(layer(latents), product)


def test_laplace_run_reports_its_pareto_k_from_its_own_gaussian(tmp_path: Path) -> None:
    from probfusion.diagnostics.report import write_report
    from probfusion.inference.laplace import component_sites

    data = write_separable_npz(tmp_path / "sep.npz", n=200, num_classes=2)
    config = dataclasses.replace(
        small_config(str(data), epochs=4),
        fusion=FusionConfig(rank=3, rank_prior="ard"),
        bayes=BayesConfig(inference="laplace", posterior_samples=16),
    )
    run = fit(config, tmp_path / "run")
    report = write_report(run.path)
    k = report.checks["variational_pareto_k"]
    assert set(k) >= {"k", "threshold", "passed", "conclusion"}
    assert k["num_draws"] > 0
    assert "effective_rank" in report.checks
    # log q against torch's MultivariateNormal, block by block (an independent implementation of the density).
    model = load_run(run.path).model
    draws = model.posterior_draws(7, torch.Generator().manual_seed(0))
    centre = {n: getattr(model, f"map_{n}") for n in ("factor_0", "factor_1", "theta", "bias")}
    blocks = component_sites({n: draws[n] for n in centre if n != "bias"}, 2).double()
    mean = component_sites({n: centre[n] for n in centre if n != "bias"}, 2).double()
    expected = torch.distributions.MultivariateNormal(mean, scale_tril=model.laplace_component_tril.double()).log_prob(
        blocks
    ).sum(-1) + torch.distributions.MultivariateNormal(
        centre["bias"].double(), scale_tril=model.laplace_bias_tril.double()
    ).log_prob(draws["bias"].double())
    torch.testing.assert_close(model.laplace_log_density(draws), expected)
