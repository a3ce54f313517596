import pytest
import torch
from torch.nn import functional as F

from probfusion.config import FusionConfig, JWAEConfig
from probfusion.fusion import MultimodalClassifier, Predictor
from probfusion.options import FusionKind

F64 = torch.float64
DIMS = {"image": 5, "audio": 4, "text": 3}
KINDS = list(FusionKind)


def _model(kind, num_modalities=2, num_classes=3, **jwae) -> MultimodalClassifier:
    dims = dict(list(DIMS.items())[:num_modalities])
    jwae_config = JWAEConfig(**{"latent_dim": 3, "hidden_dim": 8, "num_projections": 10, "dropout": 0.0, **jwae})
    fusion = FusionConfig(model=kind, rank=2, fused_dim=6)
    return MultimodalClassifier(input_dims=dims, num_classes=num_classes, jwae=jwae_config, fusion=fusion).double()


def _views(model, n=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(n, DIMS[m], dtype=F64, generator=g) for m in model.modalities}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("num_modalities", [2, 3])
def test_shapes(kind, num_modalities):
    model = _model(kind, num_modalities)
    views = _views(model)
    assert model.modalities == tuple(DIMS)[:num_modalities]
    assert model(views).shape == (7, 3)
    logits, latents = model.forward_with_latents(views)
    assert logits.shape == (7, 3)
    assert {m: z.shape for m, z in latents.items()} == dict.fromkeys(model.modalities, (7, 3))
    predictive = model.predictive_logits(views, num_samples=4)
    assert predictive.shape == (1, 7, 3)
    torch.testing.assert_close(predictive[0], logits)


def test_implements_the_predictor_protocol_and_is_differentiable_in_the_inputs():
    model = _model(FusionKind.LMF)
    assert isinstance(model, Predictor)
    views = {m: x.requires_grad_() for m, x in _views(model).items()}
    model.predictive_logits(views).sum().backward()
    assert all(x.grad is not None and x.grad.norm() > 0 for x in views.values())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("alignment", ["paired", "cross"])
def test_every_parameter_gets_a_gradient_from_cross_entropy_plus_jwae(kind, alignment):
    model = _model(kind, num_modalities=3, alignment=alignment)
    views = _views(model, n=16)
    labels = torch.arange(16) % 3
    logits, latents = model.forward_with_latents(views)
    loss = F.cross_entropy(logits, labels) + model.jwae.loss(views, latents).total
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.norm() > 0, name


def test_parameter_counts():
    model = _model(FusionKind.LMF, num_modalities=3)
    assert model.fusion_parameter_count() == 2 * 6 * 3 * (3 + 1)
    assert model.parameter_count() == sum(p.numel() for p in model.parameters())
    tfn = _model(FusionKind.TFN, num_modalities=3)
    assert tfn.fusion_parameter_count() == 6 * (3 + 1) ** 3


def _interaction_data(n, seed):
    """Two modalities whose label is the sign of a product of one feature of each: additive fusion fails."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, 4, generator=g)
    b = torch.randn(n, 3, generator=g)
    return {"a": a, "b": b}, (a[:, 0] * b[:, 0] > 0).long()


@pytest.mark.parametrize("kind", [FusionKind.LMF, FusionKind.TFN])
def test_short_fit_learns_a_multiplicative_interaction(kind):
    torch.manual_seed(0)
    train_views, train_labels = _interaction_data(512, seed=1)
    test_views, test_labels = _interaction_data(512, seed=2)
    model = MultimodalClassifier(
        input_dims={"a": 4, "b": 3},
        num_classes=2,
        jwae=JWAEConfig(latent_dim=4, hidden_dim=32, num_projections=20, dropout=0.0),
        fusion=FusionConfig(model=kind, rank=4, fused_dim=16),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(150):
        optimizer.zero_grad()
        logits, latents = model.forward_with_latents(train_views)
        loss = F.cross_entropy(logits, train_labels) + model.jwae.loss(train_views, latents, generator=generator).total
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(test_views).argmax(dim=-1) == test_labels).double().mean().item()
    assert accuracy >= 0.8  # chance is 0.5
