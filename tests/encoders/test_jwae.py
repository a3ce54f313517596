import dataclasses

import pytest
import torch

from probfusion.config import JWAEConfig
from probfusion.encoders import (
    JointWAE,
    JWAELoss,
    cross_reconstruction,
    paired_distance,
    sliced_wasserstein_to_prior,
)
from probfusion.errors import ConfigError, InputDataError
from probfusion.options import AlignmentKind, PriorPenalty

F64 = torch.float64
DIMS = {"image": 5, "audio": 4, "text": 3}


def _model(**overrides) -> JointWAE:
    config = JWAEConfig(latent_dim=2, hidden_dim=8, num_projections=10, dropout=0.0, **overrides)
    return JointWAE(input_dims=DIMS, config=config).double()


def _views(n: int = 12) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {m: torch.randn(n, d, dtype=F64, generator=g) for m, d in DIMS.items()}


def _count_decoder_calls(model: JointWAE) -> list[str]:
    calls: list[str] = []
    for name, decoder in model.decoders.items():
        decoder.register_forward_hook(lambda *_, name=name: calls.append(name))
    return calls


@pytest.mark.parametrize("num_modalities", [2, 3])
def test_encode_shapes_and_order(num_modalities):
    dims = dict(list(DIMS.items())[:num_modalities])
    model = JointWAE(input_dims=dims, config=JWAEConfig(latent_dim=2, hidden_dim=8))
    assert list(model.encoders) == list(model.decoders) == list(dims)
    views = {m: torch.randn(6, d) for m, d in reversed(dims.items())}
    latents = model.encode(views)
    assert list(latents) == list(dims)
    assert all(z.shape == (6, 2) for z in latents.values())


def test_encode_names_the_missing_modality():
    with pytest.raises(InputDataError, match="audio"):
        _model().encode({"image": torch.randn(3, 5, dtype=F64), "text": torch.randn(3, 3, dtype=F64)})


def test_dotted_modality_names_are_rejected():
    with pytest.raises(ConfigError, match=r"a\.b"):
        JointWAE(input_dims={"a.b": 2, "c": 2}, config=JWAEConfig())


def test_total_is_the_weighted_sum_of_the_parts():
    model = _model(reconstruction_weight=0.7, prior_weight=0.3, alignment_weight=0.2)
    views = _views()
    parts = model.loss(views, model.encode(views), generator=torch.Generator().manual_seed(0))
    assert isinstance(parts, JWAELoss)
    assert all(t.shape == () for t in (parts.total, parts.reconstruction, parts.prior, parts.alignment))
    assert min(parts.reconstruction.item(), parts.prior.item(), parts.alignment.item()) > 0
    expected = 0.7 * parts.reconstruction + 0.3 * parts.prior + 0.2 * parts.alignment
    torch.testing.assert_close(parts.total, expected)


def test_prior_term_sums_the_per_modality_penalty_in_order():
    model = _model(prior_penalty="swd")
    views = _views()
    latents = model.encode(views)
    parts = model.loss(views, latents, generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    expected = sum(sliced_wasserstein_to_prior(latents[m], num_projections=10, generator=g) for m in DIMS)
    torch.testing.assert_close(parts.prior, expected)


@pytest.mark.parametrize(
    ("overrides", "part"),
    [
        ({"reconstruction_weight": 0.0}, "reconstruction"),
        ({"prior_weight": 0.0}, "prior"),
        ({"prior_penalty": PriorPenalty.NONE}, "prior"),
        ({"alignment_weight": 0.0}, "alignment"),
        ({"alignment": AlignmentKind.NONE}, "alignment"),
    ],
)
def test_each_term_switches_off(overrides, part):
    model = _model(**{"alignment": "cross", **overrides})
    views = _views()
    parts = model.loss(views, model.encode(views), generator=torch.Generator().manual_seed(0))
    assert getattr(parts, part).item() == 0.0
    others = [f.name for f in dataclasses.fields(JWAELoss) if f.name not in ("total", part)]
    assert all(getattr(parts, name).item() > 0 for name in others)


def test_everything_off_computes_nothing():
    model = _model(reconstruction_weight=0.0, prior_weight=0.0, alignment_weight=0.0, alignment="cross")
    calls = _count_decoder_calls(model)
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    views = _views()
    parts = model.loss(views, model.encode(views), generator=g)
    assert parts.total.item() == 0.0
    assert calls == []  # no decoder pass
    assert torch.equal(state, g.get_state())  # no prior sample drawn


def test_reconstruction_off_with_paired_alignment_skips_the_decoders():
    model = _model(reconstruction_weight=0.0, alignment="paired")
    calls = _count_decoder_calls(model)
    views = _views()
    model.loss(views, model.encode(views))
    assert calls == []


@pytest.mark.parametrize("kind", list(AlignmentKind))
def test_alignment_kinds(kind):
    model = _model(alignment=kind)
    views = _views()
    latents = model.encode(views)
    parts = model.loss(views, latents)
    if kind is AlignmentKind.PAIRED:
        expected = paired_distance(list(latents.values()))
    elif kind is AlignmentKind.CROSS:
        expected = cross_reconstruction(latents, views, model.decoders)
    else:
        expected = torch.zeros((), dtype=F64)
    torch.testing.assert_close(parts.alignment, expected)


def test_alignment_is_skipped_for_one_modality():
    model = JointWAE(input_dims={"a": 3}, config=JWAEConfig(latent_dim=2, hidden_dim=4, alignment="cross"))
    views = {"a": torch.randn(5, 3)}
    assert model.loss(views, model.encode(views)).alignment.item() == 0.0


def test_loss_is_deterministic_under_a_generator():
    model = _model(prior_penalty="mmd")
    views = _views()
    latents = model.encode(views)
    a = model.loss(views, latents, generator=torch.Generator().manual_seed(9)).total
    b = model.loss(views, latents, generator=torch.Generator().manual_seed(9)).total
    assert a.item() == b.item()


def test_every_parameter_gets_a_gradient():
    model = _model(alignment="cross")
    views = _views()
    model.loss(views, model.encode(views)).total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.norm() > 0, name
