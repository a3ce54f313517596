"""The fitted Bayesian classifier: predictor contract, rank summary, seeding and the safetensors round trip."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from probfusion.config import BayesConfig, FusionConfig, JWAEConfig
from probfusion.errors import ConfigError
from probfusion.fusion.bayesian_classifier import BayesianFusionClassifier
from probfusion.fusion.classifier import MultimodalClassifier
from probfusion.fusion.protocol import Predictor
from probfusion.inference.data import TensorData
from probfusion.inference.svi import fit_bayesian_head
from probfusion.metrics.uncertainty import expected_entropy, mutual_information, predictive_entropy

JWAE = JWAEConfig(latent_dim=3, hidden_dim=8)
FUSION = FusionConfig(rank=4, fused_dim=4)
BAYES = BayesConfig(svi_steps=60, realign_every=20, posterior_samples=8, batch_size=32)


def _data(dims, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    views = {m: torch.randn(n, d, generator=g) for m, d in dims.items()}
    labels = (views[next(iter(dims))][:, 0] > 0).long() + (views[list(dims)[-1]][:, 0] > 0).long()
    return TensorData(views=views, labels=labels)


def _fitted(dims, **bayes):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        classifier = MultimodalClassifier(input_dims=dims, num_classes=3, jwae=JWAE, fusion=FUSION)
    data = _data(dims)
    config = BayesConfig(**{**BAYES.to_dict(), **bayes})
    return fit_bayesian_head(
        classifier, data, _data(dims, seed=1), fusion=FUSION, bayes=config, rank_prior="ard", seed=0
    )


@pytest.mark.parametrize("dims", [{"a": 4, "b": 3}, {"a": 4, "b": 3, "c": 2}], ids=["M2", "M3"])
def test_predictive_contract(dims):
    fit = _fitted(dims)
    model = fit.model
    assert isinstance(model, Predictor)
    assert len(fit.elbo) == 60
    views = {m: x[:10].clone().requires_grad_(True) for m, x in _data(dims, seed=2).views.items()}
    logits = model.predictive_logits(views, 5)
    assert logits.shape == (5, 10, 3)
    probs = logits.softmax(-1)
    assert torch.allclose(probs.sum(-1), torch.ones(5, 10))
    logits.sum().backward()
    assert all(views[m].grad.abs().sum() > 0 for m in dims)  # differentiable in every input
    fresh = model.predictive_logits(views, 5)
    assert not torch.equal(fresh, logits)  # fresh posterior draws on every call without a generator
    fixed = [model.predictive_logits(views, 5, generator=torch.Generator().manual_seed(4)) for _ in range(2)]
    assert torch.equal(fixed[0], fixed[1])
    # Entropy splits into aleatoric + epistemic on the model's own predictive.
    p = probs.detach().double()
    assert torch.allclose(predictive_entropy(p), expected_entropy(p) + mutual_information(p), atol=1e-6)


def test_rank_summary_keys_and_ranges():
    model = _fitted({"a": 4, "b": 3}).model
    summary = model.rank_summary(16, torch.Generator().manual_seed(0))
    assert 0 <= summary["effective_rank"] <= 4
    lo, hi = summary["effective_rank_interval"]
    assert lo <= summary["effective_rank"] <= hi
    assert sum(summary["effective_rank_distribution"]) == pytest.approx(1.0)
    assert len(summary["components"]) == 4
    assert {"precision_mean", "activity_probability", "variance_share"} <= set(summary["components"][0])
    draws = model.posterior_draws(6, torch.Generator().manual_seed(0))
    assert draws["precision"].shape == (6, 4)
    assert draws["factor_1"].shape == (6, 4, 4)
    assert model.fusion_parameter_count() == 4 * (2 * 4 + 3 + 1) + 3


def test_same_seed_same_model_and_state_dict_round_trip(tmp_path):
    dims = {"a": 4, "b": 3}
    a, b = _fitted(dims).model, _fitted(dims).model
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    save_file({k: v.contiguous() for k, v in a.state_dict().items()}, tmp_path / "w.safetensors")
    rebuilt = BayesianFusionClassifier(
        input_dims=dims, num_classes=3, jwae=JWAE, fusion=FUSION, bayes=BAYES, rank_prior="ard"
    )
    rebuilt.load_state_dict(load_file(tmp_path / "w.safetensors"))
    views = _data(dims, seed=3).views
    expected = a.predictive_logits(views, 7, generator=torch.Generator().manual_seed(1))
    got = rebuilt.eval().predictive_logits(views, 7, generator=torch.Generator().manual_seed(1))
    assert torch.equal(expected, got)
    assert a.rank_summary(8, torch.Generator().manual_seed(0)) == rebuilt.rank_summary(
        8, torch.Generator().manual_seed(0)
    )


def test_nuts_route_stores_draws_that_round_trip():
    dims = {"a": 4, "b": 3}
    fit = _fitted(dims, inference="nuts", num_warmup=5, num_draws=4, num_chains=2)
    model = fit.model
    assert model.draws_theta.shape == (8, 3, 4)
    assert bool(model.draws_theta.abs().sum() > 0)
    assert len(fit.divergences) == 2
    assert fit.elbo == []
    rebuilt = BayesianFusionClassifier(
        input_dims=dims, num_classes=3, jwae=JWAE, fusion=FUSION, bayes=model.bayes, rank_prior="ard"
    )
    rebuilt.load_state_dict(model.state_dict())
    views = _data(dims, seed=3).views
    gen = [torch.Generator().manual_seed(0) for _ in range(2)]
    assert torch.equal(
        model.predictive_logits(views, 3, generator=gen[0]), rebuilt.predictive_logits(views, 3, generator=gen[1])
    )
    assert model.predictive_logits(views, 20).shape == (20, 64, 3)  # more draws than stored: with replacement


def test_bad_options_are_rejected_with_a_clear_message():
    dims = {"a": 4, "b": 3}
    classifier = MultimodalClassifier(input_dims=dims, num_classes=3, jwae=JWAE, fusion=FUSION)
    with pytest.raises(ConfigError, match="'ard' or 'gaussian'"):
        fit_bayesian_head(classifier, _data(dims), _data(dims), fusion=FUSION, bayes=BAYES, rank_prior="none", seed=0)
    with pytest.raises(ConfigError, match="rank prior"):
        fit_bayesian_head(
            classifier, _data(dims), _data(dims), fusion=FUSION, bayes=BAYES, rank_prior="horseshoe", seed=0
        )
    with pytest.raises(ConfigError, match="activity_threshold"):
        BayesConfig(activity_threshold=1.5)
    with pytest.raises(ConfigError, match="inference"):
        BayesConfig(inference="expectation-propagation")
    model = _fitted(dims).model
    with pytest.raises(ConfigError, match="num_samples"):
        model.predictive_logits(_data(dims).views, 0)
