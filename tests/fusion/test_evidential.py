import pytest
import torch

from probfusion.config import EvidentialConfig, JWAEConfig
from probfusion.fusion import Predictor
from probfusion.fusion.evidential import EvidentialClassifier
from probfusion.fusion.opinions import dempster_shafer

F64 = torch.float64
DIMS = {"image": 5, "audio": 4, "text": 3}


def _model(combination, features="latent", num_modalities=2, hidden_dim=0):
    dims = dict(list(DIMS.items())[:num_modalities])
    return EvidentialClassifier(
        input_dims=dims,
        num_classes=3,
        jwae=JWAEConfig(latent_dim=3, hidden_dim=8, dropout=0.0),
        evidential=EvidentialConfig(features=features, hidden_dim=hidden_dim),
        combination=combination,
    ).double()


def _views(model, n=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(n, DIMS[m], dtype=F64, generator=g, requires_grad=True) for m in model.modalities}


@pytest.mark.parametrize("combination", ["dempster-shafer", "average"])
@pytest.mark.parametrize("features", ["latent", "input"])
@pytest.mark.parametrize("num_modalities", [2, 3])
def test_predictive_is_the_dirichlet_mean_and_vacuity_is_c_over_s(combination, features, num_modalities):
    model = _model(combination, features, num_modalities, hidden_dim=4 if features == "input" else 0)
    assert isinstance(model, Predictor)
    assert (model.jwae is None) == (features == "input")
    views = _views(model)
    out = model.opinions(views)
    assert out.view_alpha.shape == (num_modalities, 7, 3)
    assert torch.all(out.view_alpha >= 1)
    logits = model.predictive_logits(views, 5)
    assert logits.shape == (1, 7, 3)
    torch.testing.assert_close(logits.softmax(-1)[0], out.alpha / out.alpha.sum(-1, keepdim=True))
    vacuity = model.vacuity(views)
    torch.testing.assert_close(vacuity, 3 / out.alpha.sum(-1))
    assert torch.all((vacuity > 0) & (vacuity <= 1))
    if combination == "dempster-shafer":
        torch.testing.assert_close(out.alpha, dempster_shafer(out.view_alpha - 1) + 1)
    else:
        torch.testing.assert_close(out.alpha, out.view_alpha.mean(0))


@pytest.mark.parametrize("combination", ["dempster-shafer", "average"])
def test_gradients_reach_every_input_and_parameter(combination):
    model = _model(combination)
    views = _views(model)
    (model.predictive_logits(views)[0, :, 0].sum() + model.vacuity(views).sum()).backward()
    assert all(views[m].grad is not None and views[m].grad.abs().sum() > 0 for m in views)
    for name, p in model.evidence_nets.named_parameters():
        assert p.grad is not None, name
        assert p.grad.norm() > 0, name


def test_missing_modality_is_a_clear_error():
    model = _model("average", features="input")
    with pytest.raises(ValueError, match="lack modalities"):
        model.opinions({"image": torch.randn(2, 5, dtype=F64)})
