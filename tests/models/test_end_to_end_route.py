"""The SVI head trained end to end with its encoders (``BayesConfig.train_encoders``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from probfusion import fit, load_run
from probfusion.config import BayesConfig, FusionConfig, JWAEConfig, RunConfig, TrainConfig
from probfusion.errors import ConfigError
from probfusion.fusion.bayesian_classifier import BayesianFusionClassifier
from probfusion.inference.data import TensorData
from probfusion.inference.svi import elbo_objective
from probfusion.inference.training import train_classifier
from tests.helpers import small_config, write_separable_npz


def test_train_encoders_is_refused_off_the_svi_route() -> None:
    with pytest.raises(ConfigError, match="train_encoders applies to inference 'svi' only"):
        BayesConfig(inference="laplace", train_encoders=True)
    with pytest.raises(ConfigError, match="true, false or None"):
        BayesConfig(train_encoders="yes")  # type: ignore[arg-type]


def test_end_to_end_fit_learns_moves_its_encoders_and_round_trips(tmp_path: Path) -> None:
    data = write_separable_npz(tmp_path / "sep.npz", n=300, num_classes=3)
    config = dataclasses.replace(
        small_config(str(data), epochs=30),
        fusion=FusionConfig(rank=4, rank_prior="ard", linear_pool=False),  # the head's own predictive
        bayes=BayesConfig(train_encoders=True, posterior_samples=16),
        train=TrainConfig(epochs=30, batch_size=64, patience=30),
    )
    run = fit(config, tmp_path / "run")
    metrics = run.metrics
    assert metrics["test"]["accuracy"] > 0.75  # three classes: chance is 1/3
    assert metrics["elbo_final"] is None  # no separate SVI stage ran
    assert 0 <= metrics["effective_rank"] <= 4
    loaded = load_run(run.path)
    model = loaded.model
    assert isinstance(model, BayesianFusionClassifier)
    assert not any(p.requires_grad for p in model.jwae.parameters())  # frozen after training
    _, _, test = loaded.splits()
    views = loaded.tensors(test).views
    first = model.predictive_logits(views, 8, generator=torch.Generator().manual_seed(0))
    again = model.predictive_logits(views, 8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(first, again)


def _tiny(n: int = 120, seed: int = 0) -> TensorData:
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, 4, generator=g), torch.randn(n, 3, generator=g)
    labels = ((a[:, 0] * b[:, 0]) > 0).long()  # a multiplicative interaction: the head must fuse
    return TensorData({"a": a, "b": b}, labels)


def test_the_elbo_objective_trains_encoders_and_guide_and_its_loss_falls() -> None:
    train, val = _tiny(160, 0), _tiny(80, 1)
    torch.manual_seed(0)
    model = BayesianFusionClassifier(
        input_dims={"a": 4, "b": 3},
        num_classes=2,
        jwae=JWAEConfig(latent_dim=4, hidden_dim=16),
        fusion=FusionConfig(rank=4, rank_prior="ard", linear_pool=False),
        bayes=BayesConfig(train_encoders=True, posterior_samples=8, learning_rate=0.02),
        rank_prior="ard",
        train_encoders=True,
    )
    assert model.guide is not None
    model.guide.initialise(generator=torch.Generator().manual_seed(0))
    encoder_before = [p.detach().clone() for p in model.jwae.parameters()]
    scale_before = model.guide.scale().detach().clone()
    groups = model.parameter_groups()
    assert groups[1]["weight_decay"] == 0.0  # the guide: no decay (its prior is in the ELBO) ...
    assert groups[1]["lr"] == 0.02  # ... and SVI's learning rate
    result = train_classifier(
        model,
        train,
        val,
        TrainConfig(epochs=60, batch_size=32, patience=60, weight_decay=1e-3),
        seed=0,
        objective=elbo_objective(len(train)),
    )
    losses = [r.cross_entropy for r in result.history]
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5  # the per-row negative ELBO falls
    assert result.history[result.best_epoch - 1].val_accuracy > 0.7  # chance is 1/2
    assert any((p - q).abs().max() > 1e-3 for p, q in zip(model.jwae.parameters(), encoder_before, strict=True))
    assert (model.guide.scale() - scale_before).abs().max() > 1e-3  # the posterior's spread is fitted too


def test_end_to_end_validation_scores_reproduce_whatever_the_global_rng(tmp_path: Path) -> None:
    data = write_separable_npz(tmp_path / "sep.npz", n=160, num_classes=2)
    config = dataclasses.replace(
        small_config(str(data), epochs=3),
        fusion=FusionConfig(rank=3, rank_prior="ard", linear_pool=False),
        bayes=BayesConfig(train_encoders=True, posterior_samples=8),
    )
    torch.manual_seed(1)
    first = fit(config, tmp_path / "a").metrics
    torch.manual_seed(2)
    second = fit(config, tmp_path / "b").metrics
    assert first["val"] == second["val"]
    assert first["test"] == second["test"]


def test_the_input_skip_is_refused_where_a_second_stage_would_drop_it() -> None:
    skip = FusionConfig(rank_prior="ard", input_linear=True)
    assert RunConfig(fusion=skip).fusion.input_linear  # the SVI default trains end to end: it takes the skip
    for bayes in (BayesConfig(inference="laplace"), BayesConfig(inference="nuts"), BayesConfig(train_encoders=False)):
        with pytest.raises(ConfigError, match="needs the SVI head trained end to end"):
            RunConfig(fusion=skip, bayes=bayes)
    with pytest.raises(ConfigError, match="input_linear applies to"):
        FusionConfig(model="gp-mkl", input_linear=True)


def _skip_model(num_classes: int = 2, latent_dim: int = 4) -> BayesianFusionClassifier:
    model = BayesianFusionClassifier(
        input_dims={"a": 4, "b": 3},
        num_classes=num_classes,
        jwae=JWAEConfig(latent_dim=latent_dim, hidden_dim=16),
        fusion=FusionConfig(rank=4, rank_prior="ard", input_linear=True, linear_pool=False),
        bayes=BayesConfig(posterior_samples=8),
        rank_prior="ard",
        train_encoders=True,
    )
    assert model.guide is not None
    model.guide.initialise(generator=torch.Generator().manual_seed(0))
    return model


def test_the_input_skip_adds_one_linear_map_to_every_draw_and_to_the_elbo() -> None:
    data = _tiny(40)
    model = _skip_model()
    assert model.input_linear is not None
    assert float(model.input_linear.weight.detach().abs().sum()) == 0.0  # starts as without it
    with torch.no_grad():
        model.input_linear.weight.normal_(generator=torch.Generator().manual_seed(1))
        model.input_linear.bias.normal_(generator=torch.Generator().manual_seed(2))
    model.eval()
    with torch.no_grad():
        pooled = model.predictive_logits(data.views, 5, generator=torch.Generator().manual_seed(3))
        skip = model.input_linear(torch.cat([data.views["a"], data.views["b"]], dim=-1))
        model.input_linear.weight.zero_()
        model.input_linear.bias.zero_()
        head = model.predictive_logits(data.views, 5, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(pooled - head, skip.expand(5, -1, -1))  # the same (n, c) for each of the 5 draws
    model.train()
    loss, _ = elbo_objective(len(data))(model, data.views, data.labels, epoch=1, generator=torch.Generator())
    loss.backward()
    assert model.input_linear.weight.grad is not None
    assert float(model.input_linear.weight.grad.detach().abs().sum()) > 0  # the skip is inside the likelihood
    model.freeze_encoders()
    assert not model.input_linear.weight.requires_grad


def _linear_labels(n: int, seed: int) -> TensorData:
    """Six classes from the argmax of a fixed linear map of both views: what a linear skip fits exactly."""
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, 4, generator=g), torch.randn(n, 3, generator=g)
    weight = torch.randn(6, 7, generator=torch.Generator().manual_seed(99))
    return TensorData({"a": a, "b": b}, (torch.cat([a, b], dim=-1) @ weight.T).argmax(-1))


def test_the_input_skip_fits_what_one_dimensional_latents_cannot() -> None:
    train, val = _linear_labels(300, 0), _linear_labels(200, 1)
    accuracy = {}
    for with_skip in (False, True):
        torch.manual_seed(0)
        model = _skip_model(num_classes=6, latent_dim=1)
        if not with_skip:
            model.input_linear = None
        result = train_classifier(
            model,
            train,
            val,
            TrainConfig(epochs=20, batch_size=64, patience=20, weight_decay=1e-3, learning_rate=0.01),
            seed=0,
            objective=elbo_objective(len(train)),
        )
        accuracy[with_skip] = result.history[result.best_epoch - 1].val_accuracy
    assert accuracy[True] > 0.8  # six classes: chance is about 1/6 (0.89 when written)
    assert accuracy[True] > accuracy[False] + 0.2  # a 1-d latent per view cannot place six linear classes (0.50)


def test_the_diagnostics_likelihood_is_the_predictive_of_a_run_with_the_skip(tmp_path: Path) -> None:
    from probfusion.diagnostics.attribution import ablation_from_draws
    from probfusion.diagnostics.posterior import pointwise_log_likelihood, posterior, split_inputs

    data = write_separable_npz(tmp_path / "sep.npz", n=160, num_classes=3)
    config = dataclasses.replace(
        small_config(str(data), epochs=4),
        fusion=FusionConfig(rank=3, rank_prior="ard", input_linear=True, linear_pool=False),
        bayes=BayesConfig(posterior_samples=8),
    )
    run = load_run(fit(config, tmp_path / "run").path)
    model = run.model
    latents, labels, offset = split_inputs(run, "train")
    assert offset is not None
    views = run.tensors(run.splits()[0]).views
    with torch.no_grad():
        draws = model.posterior_draws(4, generator=torch.Generator().manual_seed(0))
        logits = model.predictive_logits(views, 4, generator=torch.Generator().manual_seed(0))
        expected = logits.log_softmax(-1).gather(-1, labels.expand(4, -1).unsqueeze(-1)).squeeze(-1)
        torch.testing.assert_close(pointwise_log_likelihood(latents, labels, draws, offset), expected)
        assert not torch.allclose(pointwise_log_likelihood(latents, labels, draws), expected)  # the skip counts
    idata = posterior(run, num_draws=8)
    assert idata.log_likelihood["y"].shape[-1] == len(labels)
    # The ablation keeps the skip: its full-model accuracy is the predictive's, not the head's alone.
    with torch.no_grad():
        full = ablation_from_draws(latents, draws, labels, offset)
        alone = ablation_from_draws(latents, draws, labels)
    assert not torch.allclose(full.total_variation, alone.total_variation)
