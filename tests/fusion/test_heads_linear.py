"""The linear classifier head: shapes, options, and exact additivity of concatenation fusion under it."""

import pytest
import torch

from probfusion.config import FusionConfig, JWAEConfig, RunConfig
from probfusion.errors import ConfigError
from probfusion.fusion import ClassifierHead, MultimodalClassifier
from probfusion.fusion.factory import build_head
from probfusion.options import HeadKind

F64 = torch.float64
DIMS = {"image": 5, "audio": 4, "text": 3}


def _classifier(head: str, model: str = "concat", num_modalities: int = 2) -> MultimodalClassifier:
    dims = dict(list(DIMS.items())[:num_modalities])
    jwae = JWAEConfig(latent_dim=3, hidden_dim=8, num_projections=10, dropout=0.0)
    fusion = FusionConfig(model=model, rank=2, fused_dim=6, head=head)
    torch.manual_seed(0)
    return MultimodalClassifier(input_dims=dims, num_classes=3, jwae=jwae, fusion=fusion).double().eval()


def _views(modalities, n=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(n, DIMS[m], dtype=F64, generator=g) for m in modalities}


@pytest.mark.parametrize("kind", ["mlp", "linear"])
def test_head_shapes_and_kind(kind):
    head = build_head(FusionConfig(fused_dim=4, head=kind), num_classes=3)
    assert head.kind is HeadKind(kind)
    assert head(torch.randn(5, 4)).shape == (5, 3)
    assert [k for k in head.state_dict()] == ["net.2.weight", "net.2.bias"]  # same layout as the mlp head


def test_linear_head_is_affine_and_mlp_head_is_not():
    torch.manual_seed(0)
    f, g = torch.randn(6, 4, dtype=F64), torch.randn(6, 4, dtype=F64)
    linear = ClassifierHead(fused_dim=4, num_classes=3, kind="linear").double()
    mlp = ClassifierHead(fused_dim=4, num_classes=3, kind="mlp").double()
    bias = linear(torch.zeros(1, 4, dtype=F64))
    torch.testing.assert_close(linear(f + g) - bias, (linear(f) - bias) + (linear(g) - bias))
    assert not torch.allclose(mlp(f + g) - mlp(torch.zeros(1, 4, dtype=F64)), mlp(f) + mlp(g) - 2 * mlp(0 * f[:1]))


@pytest.mark.parametrize("num_modalities", [2, 3])
def test_concat_with_linear_head_is_additive_in_the_modalities(num_modalities):
    # f(x1, x2) - f(x1', x2) must not depend on x2 (nor on any other modality).
    model = _classifier("linear", num_modalities=num_modalities)
    first, *others = model.modalities
    base = _views(model.modalities, seed=0)
    swapped_first = {**base, first: _views([first], seed=1)[first]}
    changed_others = {m: _views([m], seed=2 + k)[m] for k, m in enumerate(others)}
    effect_here = model({**base}) - model(swapped_first)
    effect_there = model({**base, **changed_others}) - model({**swapped_first, **changed_others})
    assert effect_here.abs().max() > 1e-3  # the first modality does move the logits
    torch.testing.assert_close(effect_here, effect_there, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("head", "model"), [("mlp", "concat"), ("linear", "lmf")])
def test_other_heads_or_fusions_are_not_additive(head, model):
    clf = _classifier(head, model=model)
    first, second = clf.modalities
    base = _views(clf.modalities, seed=0)
    swapped = {**base, first: _views([first], seed=1)[first]}
    other = _views([second], seed=2)[second]
    effect_here = clf(base) - clf(swapped)
    effect_there = clf({**base, second: other}) - clf({**swapped, second: other})
    assert (effect_here - effect_there).abs().max() > 1e-4


def test_head_option_parses_round_trips_and_defaults_for_old_configs():
    assert FusionConfig().head is HeadKind.MLP
    assert FusionConfig(head="LINEAR").head is HeadKind.LINEAR
    config = RunConfig(fusion=FusionConfig(model="concat", head="linear"))
    stored = config.to_dict()
    assert stored["fusion"]["head"] == "linear"
    assert RunConfig.from_dict(stored) == config
    del stored["fusion"]["head"]  # a run written before the option existed
    assert RunConfig.from_dict(stored).fusion.head is HeadKind.MLP
    with pytest.raises(ConfigError, match="Unknown head 'relu'; expected one of: mlp, linear"):
        FusionConfig(head="relu")
