import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from probfusion.baselines.gp import GPMKLClassifier
from probfusion.baselines.gp_fit import dirichlet_targets, fit_gp_mkl
from probfusion.config import GPMKLConfig, JWAEConfig
from probfusion.encoders.jwae import JointWAE
from probfusion.errors import ConfigError, InputDataError
from probfusion.inference.data import TensorData

with warnings.catch_warnings():
    # Already imported (and its torch.jit.script deprecation silenced) by probfusion.baselines.gp; kept narrow.
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=DeprecationWarning)
    import gpytorch


def _data(n, *, seed, num_classes=3):
    """Two modalities, each carrying part of the label (class means on different axes), plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % num_classes
    a = rng.normal(size=(n, 2)) + 1.5 * np.eye(num_classes)[y][:, :2]
    b = rng.normal(size=(n, 3)) + 1.5 * np.eye(num_classes)[y][:, [2, 2, 1]]
    views = {"a": torch.as_tensor(a, dtype=torch.float32), "b": torch.as_tensor(b, dtype=torch.float32)}
    return TensorData(views=views, labels=torch.as_tensor(y))


CONFIG = GPMKLConfig(features="input", gp_steps=30, factor_rank=16)


@pytest.fixture(scope="module")
def fitted():
    return fit_gp_mkl(_data(90, seed=0), encoder=None, config=CONFIG, seed=0, num_classes=3)


def test_dirichlet_targets_match_gpytorch():
    labels = torch.tensor([0, 2, 1, 2])
    targets, noise = dirichlet_targets(labels, 3, alpha_epsilon=0.01)
    reference = gpytorch.likelihoods.DirichletClassificationLikelihood(labels, alpha_epsilon=0.01, dtype=torch.float64)
    torch.testing.assert_close(targets, reference.transformed_targets)
    torch.testing.assert_close(noise, reference.noise_covar.noise)


def test_gp_learns_and_reports_weights(fitted):
    test = _data(150, seed=1)
    probs = fitted.model.predictive_logits(test.views, 32, generator=torch.Generator().manual_seed(0))
    accuracy = float((probs.softmax(-1).mean(0).argmax(-1) == test.labels).float().mean())
    # Chance is 1/3; the Bayes rate of this problem is about 0.85. Margin: at least 0.3 above chance.
    assert accuracy > 1 / 3 + 0.3
    assert set(fitted.kernel_weights) == {"a", "b"}
    assert sum(fitted.kernel_weights.values()) == pytest.approx(1.0)
    assert fitted.solver_status == "optimal"
    assert fitted.solver_seconds > 0


def test_predictive_shape_and_normalisation(fitted):
    logits = fitted.model.predictive_logits(_data(7, seed=2).views, 5)
    assert logits.shape == (5, 7, 3)
    torch.testing.assert_close(logits.softmax(-1).sum(-1), torch.ones(5, 7))


def test_gradient_with_respect_to_inputs_is_nonzero(fitted):
    views = {m: x.clone().requires_grad_(True) for m, x in _data(6, seed=3).views.items()}
    fitted.model.predictive_logits(views, 4, generator=torch.Generator().manual_seed(0)).log_softmax(-1)[
        ..., 0
    ].sum().backward()
    for x in views.values():
        assert x.grad.abs().sum() > 0


def test_exact_predictive_matches_gpytorch_posterior(fitted):
    model = fitted.model.double()
    x_train, y_train = model.train_inputs, model.train_targets
    likelihood = gpytorch.likelihoods.FixedNoiseGaussianLikelihood(
        noise=model.label_noise + model.likelihood.second_noise_covar.noise
    ).double()

    class Reference(gpytorch.models.ExactGP):
        def forward(self, x):
            return gpytorch.distributions.MultivariateNormal(model.gp.mean_module(x), model.gp.covar_module(x))

    reference = Reference(x_train, y_train, likelihood).eval()
    views = {m: x.double() for m, x in _data(5, seed=4).views.items()}
    with gpytorch.settings.max_cholesky_size(10_000), gpytorch.settings.fast_pred_var(False):
        expected = reference(model.features(views))
    mean, var = model.latent_posterior(views)
    torch.testing.assert_close(mean, expected.mean, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(var, expected.variance, rtol=1e-5, atol=1e-8)
    fitted.model.float()


def _round_trip(model, path, *, input_dims, num_train, jwae, config):
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    rebuilt = GPMKLClassifier(input_dims=input_dims, num_classes=3, num_train=num_train, jwae=jwae, config=config)
    rebuilt.load_state_dict(load_file(str(path)))
    rebuilt.eval()
    views = _data(8, seed=5).views
    a = model.predictive_logits(views, 3, generator=torch.Generator().manual_seed(1))
    b = rebuilt.predictive_logits(views, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_state_dict_round_trips_exact(fitted, tmp_path):
    _round_trip(
        fitted.model,
        tmp_path / "w.safetensors",
        input_dims={"a": 2, "b": 3},
        num_train=90,
        jwae=JWAEConfig(),
        config=CONFIG,
    )


def test_variational_and_latent_state_dict_round_trips(tmp_path):
    torch.manual_seed(0)
    jwae_config = JWAEConfig(latent_dim=3, hidden_dim=8)
    encoder = JointWAE(input_dims={"a": 2, "b": 3}, config=jwae_config)
    config = GPMKLConfig(features="latent", max_exact_points=50, num_inducing=20, gp_steps=20, factor_rank=8)
    fit = fit_gp_mkl(_data(90, seed=0), encoder=encoder, config=config, seed=0, num_classes=3)
    assert not fit.model.exact
    assert fit.model.jwae is not None
    _round_trip(
        fit.model,
        tmp_path / "v.safetensors",
        input_dims={"a": 2, "b": 3},
        num_train=90,
        jwae=jwae_config,
        config=config,
    )


def test_latent_features_need_an_encoder():
    with pytest.raises(ConfigError, match="encoder"):
        fit_gp_mkl(_data(30, seed=0), encoder=None, config=GPMKLConfig(), seed=0)


def test_missing_modality_is_an_input_error(fitted):
    with pytest.raises(InputDataError, match="lack"):
        fitted.model.predictive_logits({"a": torch.zeros(2, 2)}, 1)
