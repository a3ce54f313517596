"""FusionConfig.linear_pool: the logistic regression fitted apart and pooled with the fusion model's logits."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from probfusion import fit, load_run
from probfusion.baselines.logistic import fit_logistic_regression
from probfusion.config import FusionConfig, JWAEConfig, RunConfig, TrainConfig, resolve_config
from probfusion.errors import ConfigError
from probfusion.fusion.classifier import MultimodalClassifier
from probfusion.inference.linear_pool import fit_pool_weight, pool_state
from tests.helpers import small_config, write_interaction_npz, write_separable_npz

DIMS = {"a": 5, "b": 3}


def _blobs(n: int, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, n)
    x = rng.normal(size=(num_classes, 6))[y] + rng.normal(size=(n, 6))
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)


@pytest.mark.parametrize("num_classes", [2, 4])
def test_the_regression_gives_scikit_learns_probabilities_and_its_c_has_the_lowest_validation_nll(num_classes):
    x, y = _blobs(200, num_classes, seed=0)
    xv, yv = _blobs(80, num_classes, seed=1)
    grid = (0.001, 0.1, 10.0)
    fit = fit_logistic_regression(x, y, xv, yv, num_classes=num_classes, c_grid=grid)
    losses = {}
    for c in grid:  # the brute-force reference: scikit-learn's own probabilities and log-loss
        model = LogisticRegression(C=c, max_iter=2000).fit(x.double().numpy(), y.numpy())
        losses[c] = log_loss(yv.numpy(), model.predict_proba(xv.double().numpy()), labels=range(num_classes))
        if c == fit.c:
            expected = model.predict_proba(xv.double().numpy())
    assert fit.c == min(losses, key=losses.get)
    assert fit.val_nll == pytest.approx(losses[fit.c], abs=1e-5)
    np.testing.assert_allclose(fit.logits(xv).softmax(-1).numpy(), expected, atol=1e-5)


def test_a_class_absent_from_the_training_rows_gets_a_negligible_probability():
    x, y = _blobs(120, 3, seed=0)
    keep = y != 1
    fit = fit_logistic_regression(x[keep], y[keep], x, y, num_classes=3, c_grid=(1.0,))
    probs = fit.logits(x).softmax(-1)
    assert probs.shape == (120, 3)
    assert float(probs[:, 1].max()) < 1e-10
    assert torch.isfinite(fit.logits(x)).all()


def test_a_bad_c_grid_is_refused():
    x, y = _blobs(20, 2, seed=0)
    for grid in ((), (0.0,), (float("inf"),)):
        with pytest.raises(ConfigError, match="C grid"):
            fit_logistic_regression(x, y, x, y, num_classes=2, c_grid=grid)
    with pytest.raises(ConfigError, match="linear_pool_c_grid"):
        FusionConfig(linear_pool_c_grid=(-1.0,))
    with pytest.raises(ConfigError, match="linear_pool_steps"):
        FusionConfig(linear_pool_steps=0)


def _nll(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float(torch.nn.functional.cross_entropy(logits, labels))


def test_the_pool_weight_and_temperature_match_a_brute_force_search():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (150,), generator=generator)
    signal = torch.nn.functional.one_hot(labels, 4).double()
    f = 3 * signal + 2.0 * torch.randn(150, 4, generator=generator, dtype=torch.float64)
    g = 2 * signal + 1.5 * torch.randn(150, 4, generator=generator, dtype=torch.float64)
    pool = fit_pool_weight(f, g, labels, steps=10)
    temperatures = np.geomspace(1.0, 100.0, 4001)
    brute = min(
        (_nll(((1 - w) * f + w * g) / t, labels), w) for w, t in itertools.product(np.linspace(0, 1, 11), temperatures)
    )
    assert pool.weight == pytest.approx(brute[1])
    assert pool.val_nll <= brute[0] + 1e-9
    assert pool.val_nll == pytest.approx(brute[0], abs=1e-4)
    assert pool.val_nll == pytest.approx(_nll(((1 - pool.weight) * f + pool.weight * g) / pool.temperature, labels))
    assert pool.fusion_val_nll == pytest.approx(min(_nll(f / t, labels) for t in temperatures), abs=1e-4)


def test_the_pool_keeps_the_fusion_model_unless_the_regression_helps():
    generator = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 3, (90,), generator=generator)
    informative = 4 * torch.nn.functional.one_hot(labels, 3).double() + torch.randn(90, 3, generator=generator)
    noise = torch.randn(90, 3, generator=generator, dtype=torch.float64)
    assert fit_pool_weight(informative, informative.clone(), labels, steps=20).weight == 0.0  # a tie: w = 0
    assert fit_pool_weight(informative, noise, labels, steps=20).weight <= 0.1
    assert fit_pool_weight(noise, informative, labels, steps=20).weight >= 0.9


def _pair(model: str = "lmf") -> tuple[MultimodalClassifier, MultimodalClassifier]:
    jwae = JWAEConfig(latent_dim=2, hidden_dim=8)
    plain = FusionConfig(model=model, rank=2, fused_dim=4, linear_pool=False)
    fusions = (plain, dataclasses.replace(plain, linear_pool=True))
    models = []
    for fusion in fusions:
        torch.manual_seed(0)
        models.append(MultimodalClassifier(input_dims=DIMS, num_classes=3, jwae=jwae, fusion=fusion).eval())
    return models[0], models[1]


@pytest.mark.parametrize("model", ["lmf", "tfn", "concat"])
def test_the_pooled_classifier_computes_the_pool_and_is_differentiable_in_the_inputs(model):
    plain, pooled = _pair(model)
    views = {"a": torch.randn(6, 5), "b": torch.randn(6, 3)}
    torch.testing.assert_close(pooled(views), plain(views))  # w = 0 until the pool is fitted
    assert pooled.parameter_count() == plain.parameter_count()  # the regression is buffers, not trained
    pooled.linear_weight.normal_()
    pooled.linear_bias.normal_()
    linear = torch.cat([views["a"], views["b"]], -1) @ pooled.linear_weight.T + pooled.linear_bias
    with pool_state(pooled, weight=0.3, temperature=2.0):
        torch.testing.assert_close(pooled(views), (0.7 * plain(views) + 0.3 * linear) / 2.0)
        inputs = {m: x.clone().requires_grad_() for m, x in views.items()}
        pooled(inputs)[:, 0].sum().backward()
    plain_inputs = {m: x.clone().requires_grad_() for m, x in views.items()}
    plain(plain_inputs)[:, 0].sum().backward()
    expected = 0.7 * plain_inputs["b"].grad + 0.3 * pooled.linear_weight[0, 5:].expand(6, 3)
    torch.testing.assert_close(inputs["b"].grad, expected / 2.0)
    assert float(pooled.pool_weight) == 0.0  # restored after the block
    assert float(pooled.temperature) == 1.0


def test_it_is_refused_for_the_gp_and_evidential_kinds_and_resolves_by_where_it_applies():
    for model in ("gp-mkl", "tmc", "rcml"):
        with pytest.raises(ConfigError, match="linear_pool"):
            FusionConfig(model=model, linear_pool=True)
    assert FusionConfig(rank_prior="ard", linear_pool=True).linear_pool is True

    def resolved(fusion: FusionConfig, streaming: bool = False) -> bool | None:
        config = RunConfig(fusion=fusion)
        dims = {"a": 4, "b": 3}
        resolved = resolve_config(config, input_dims=dims, num_classes=3, num_train=300, streaming=streaming)
        return resolved.fusion.linear_pool

    assert resolved(FusionConfig(linear_pool=None)) is True
    assert resolved(FusionConfig(model="concat", linear_pool=None)) is True
    assert resolved(FusionConfig(linear_pool=None), streaming=True) is False
    assert resolved(FusionConfig(rank_prior="ard", linear_pool=None)) is True  # NOTES.md §21
    assert resolved(FusionConfig(model="gp-mkl", linear_pool=None)) is False
    assert resolved(FusionConfig(linear_pool=False)) is False
    stored = RunConfig(fusion=FusionConfig(linear_pool=True)).to_dict()
    del stored["fusion"]["linear_pool"]
    assert RunConfig.from_dict(stored).fusion.linear_pool is False  # runs stored before the field


def _config(data: Path, pool: bool) -> RunConfig:
    config = small_config(str(data), epochs=30)
    return dataclasses.replace(
        config,
        fusion=FusionConfig(rank=2, fused_dim=8, linear_pool=pool),
        train=TrainConfig(epochs=30, batch_size=64, patience=30),
    )


def test_a_pooled_run_reports_both_models_and_its_fusion_part_is_the_run_without_the_pool(tmp_path: Path):
    data = write_separable_npz(tmp_path / "sep.npz", n=300, num_classes=3)
    plain = fit(_config(data, pool=False), tmp_path / "plain")
    pooled = fit(_config(data, pool=True), tmp_path / "pooled")
    record = pooled.metrics["linear_pool"]
    assert record["fusion_only"] == {split: plain.metrics[split] for split in ("train", "val", "test")}
    assert record["linear_only"]["test"]["accuracy"] > 0.75  # separable blobs: the regression learns (chance 1/3)
    assert pooled.metrics["test"]["accuracy"] > 0.75
    assert record["val_nll"] <= record["fusion_val_nll"] + 1e-12  # w = 0 is on the grid
    assert record["val_nll"] <= record["linear_val_nll"] + 1e-6  # so is w = 1 at T = 1
    assert 0.0 <= record["weight"] <= 1.0
    assert record["C"] in FusionConfig().linear_pool_c_grid
    assert pooled.metrics["temperature"] == pytest.approx(record["temperature"])
    loaded = load_run(pooled.path)
    assert float(loaded.model.pool_weight) == pytest.approx(record["weight"])
    _, _, test = loaded.splits()
    data_test = loaded.tensors(test)
    with torch.no_grad():
        probs = loaded.model.eval()(data_test.views).softmax(-1)
    accuracy = float((probs.argmax(-1) == data_test.labels).float().mean())
    assert accuracy == pytest.approx(pooled.metrics["test"]["accuracy"])


def test_on_data_a_linear_model_cannot_fit_the_pool_leans_on_the_fusion_model(tmp_path: Path):
    data = write_interaction_npz(tmp_path / "xor.npz", n=600)
    run = fit(_config(data, pool=True), tmp_path / "run")
    record = run.metrics["linear_pool"]
    assert record["linear_only"]["test"]["accuracy"] < 0.65  # the sign of a product: no linear signal
    assert record["fusion_only"]["test"]["accuracy"] > 0.75
    assert record["weight"] <= 0.25
    assert run.metrics["test"]["accuracy"] >= record["fusion_only"]["test"]["accuracy"] - 0.03


def test_with_several_draws_the_pool_weight_minimises_the_mixture_nll():
    generator = torch.Generator().manual_seed(2)
    labels = torch.randint(0, 3, (80,), generator=generator)
    signal = torch.nn.functional.one_hot(labels, 3).double()
    draws = 2 * signal + 2.5 * torch.randn(7, 80, 3, generator=generator, dtype=torch.float64)  # (s, n, c)
    g = 1.5 * signal + torch.randn(80, 3, generator=generator, dtype=torch.float64)

    def mixture_nll(w: float) -> float:  # -log of the mean over draws of the pooled softmax, by brute force
        probs = torch.stack([torch.softmax((1 - w) * d + w * g, -1) for d in draws]).mean(0)
        return float(-probs[torch.arange(80), labels].log().mean())

    pool = fit_pool_weight(draws, g, labels, steps=10)
    grid = {k / 10: mixture_nll(k / 10) for k in range(11)}
    assert pool.weight == min(grid, key=grid.get)
    assert pool.temperature == 1.0  # several draws: no temperature
    assert pool.val_nll == pytest.approx(grid[pool.weight])
    assert pool.fusion_val_nll == pytest.approx(grid[0.0])
    with pytest.raises(ConfigError, match="agree in"):
        fit_pool_weight(draws, g[:10], labels, steps=10)


@pytest.mark.parametrize("inference", ["svi", "laplace"])
def test_a_bayesian_run_pools_every_draw_and_its_head_alone_is_the_run_without_the_pool(tmp_path: Path, inference):
    data = write_separable_npz(tmp_path / "sep.npz", n=300, num_classes=3)
    runs = {}
    for pool in (False, True):
        config = _config(data, pool=pool)
        config = dataclasses.replace(
            config,
            fusion=dataclasses.replace(config.fusion, rank_prior="ard"),
            bayes=dataclasses.replace(config.bayes, inference=inference, svi_steps=150, posterior_samples=8),
        )
        runs[pool] = fit(config, tmp_path / f"{inference}-{pool}")
    record = runs[True].metrics["linear_pool"]
    assert record["fusion_only"] == {split: runs[False].metrics[split] for split in ("train", "val", "test")}
    assert record["temperature"] == 1.0
    assert record["fusion_temperature"] is None
    assert record["val_nll"] <= record["fusion_val_nll"] + 1e-12
    assert runs[True].metrics["test"]["accuracy"] > 0.75  # three separable classes: chance is 1/3
    loaded = load_run(runs[True].path)
    views = loaded.tensors(loaded.splits()[2]).views
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        pooled = loaded.model.predictive_logits(views, 4, generator=torch.Generator().manual_seed(0))
        with pool_state(loaded.model, weight=0.0):
            alone = loaded.model.predictive_logits(views, 4, generator=generator)
    w = float(loaded.model.pool_weight)
    linear = torch.cat([views[m] for m in loaded.model.modalities], -1) @ loaded.model.linear_weight.T
    torch.testing.assert_close(pooled, (1 - w) * alone + w * (linear + loaded.model.linear_bias))  # per draw
