import pytest
import torch

from probfusion.errors import ConfigError
from probfusion.robustness.shifts import (
    DROPOUT_RATES,
    NOISE_LEVELS,
    feature_dropout,
    gaussian_noise,
    marginal_missing_probabilities,
    missing_modality,
)

from .conftest import GaussianWeightNet, TanhNet, make_data


def _views(n=4000):
    g = torch.Generator().manual_seed(0)
    return {
        "a": torch.randn(n, 5, generator=g, dtype=torch.float64),
        "b": torch.randn(n, 3, generator=g, dtype=torch.float64),
    }


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_noise_has_the_severity_standard_deviation_on_the_chosen_modality_only(severity):
    views = _views()
    out = gaussian_noise(views, severity=severity, modalities=("a",), generator=torch.Generator().manual_seed(1))
    spread = (out["a"] - views["a"]).std().item()
    assert spread == pytest.approx(NOISE_LEVELS[severity - 1], rel=0.03)  # 20,000 draws: sd error about 0.5%
    assert torch.equal(out["b"], views["b"])


@pytest.mark.parametrize("severity", [1, 5])
def test_dropout_sets_the_severity_share_of_features_to_the_training_mean(severity):
    views = _views()
    out = feature_dropout(views, severity=severity, modalities=("a", "b"), generator=torch.Generator().manual_seed(1))
    dropped = torch.cat([out["a"] == 0, out["b"] == 0], 1).double().mean().item()
    assert dropped == pytest.approx(DROPOUT_RATES[severity - 1], abs=0.01)  # 32,000 features: sd under 0.3%
    kept = out["a"] != 0
    assert torch.equal(out["a"][kept], views["a"][kept])


def test_missing_modality_mean_and_raw_zero():
    views = _views(10)
    mean = missing_modality(views, modalities=("b",), imputation="mean")
    assert torch.equal(mean["b"], torch.zeros_like(views["b"]))
    assert torch.equal(mean["a"], views["a"])
    raw_zero = {"b": torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64)}
    zero = missing_modality(views, modalities=("b",), imputation="zero", raw_zero=raw_zero)
    assert torch.equal(zero["b"], raw_zero["b"].expand(10, 3))
    with pytest.raises(ConfigError, match="raw_zero"):
        missing_modality(views, modalities=("b",), imputation="zero")


@pytest.mark.parametrize("model", [TanhNet(), GaussianWeightNet()], ids=["deterministic", "stochastic"])
def test_marginal_averages_over_donors_like_an_explicit_loop(model):
    views, _ = make_data(6)
    donors = {"b": torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))}
    got = marginal_missing_probabilities(
        model, views, modalities=("b",), donors=donors, num_samples=4, generator=torch.Generator().manual_seed(3)
    )
    # Reference: one forward per donor. For the stochastic model, the same weight draws must serve every donor,
    # which is what a single tiled call gives; the reference replays them by reseeding per donor.
    expected = []
    with torch.no_grad():
        for k in range(5):
            filled = {"a": views["a"], "b": donors["b"][k].expand(6, 3)}
            if isinstance(model, GaussianWeightNet):
                logits = model.predictive_logits(filled, 4, generator=torch.Generator().manual_seed(3))
            else:
                logits = model.predictive_logits(filled, 4)
            expected.append(logits.softmax(-1))
    assert torch.allclose(got, torch.stack(expected).mean(0), atol=1e-12)


@pytest.mark.parametrize("severity", [0, 6, 2.5, True])
def test_bad_severity_is_a_config_error(severity):
    with pytest.raises(ConfigError, match="severity"):
        gaussian_noise(_views(3), severity=severity, modalities=("a",))


def test_unknown_modality_is_a_config_error():
    with pytest.raises(ConfigError, match="subset"):
        feature_dropout(_views(3), severity=1, modalities=("c",))
