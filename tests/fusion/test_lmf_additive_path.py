"""LMF with the factorization-machine-style additive path: ``sum_i prod_m W_m^(i) z~_m + A [z_1; ...; z_M] + b``."""

import dataclasses

import pytest
import torch

from probfusion import BayesConfig, fit, load_run
from probfusion.config import FusionConfig, JWAEConfig
from probfusion.fusion import ConcatFusion, LowRankFusion, MultimodalClassifier
from tests.helpers import small_config, write_interaction_npz

F64 = torch.float64
DIMS = [2, 3, 4]


def _latents(dims, n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, dtype=F64, generator=g) for d in dims]


@pytest.mark.parametrize("num_modalities", [1, 2, 3])
def test_shapes_parameters_and_gradients(num_modalities):
    dims = DIMS[:num_modalities]
    lmf = LowRankFusion(input_dims=dims, rank=4, output_dim=6, additive_path=True).double()
    latents = [z.requires_grad_() for z in _latents(dims)]
    fused = lmf(latents)
    assert fused.shape == (5, 6)
    assert lmf.component_outputs(latents).shape == (5, 4, 6)  # the interaction part only
    assert tuple(lmf.additive.linear.weight.shape) == (6, sum(dims))
    factors = sum(4 * 6 * (d + 1) for d in dims)
    assert sum(p.numel() for p in lmf.parameters()) == factors + 6 * (sum(dims) + 1)
    fused.square().sum().backward()
    for name, p in lmf.named_parameters():
        assert p.grad is not None, name
        assert p.grad.norm() > 0, name
    assert all(z.grad is not None and z.grad.norm() > 0 for z in latents)


def test_output_is_the_components_plus_the_linear_map_of_the_concatenation():
    lmf = LowRankFusion(input_dims=DIMS, rank=3, output_dim=4, additive_path=True).double()
    latents = _latents(DIMS)
    linear = lmf.additive.linear
    expected = lmf.component_outputs(latents).sum(1) + torch.cat(latents, 1) @ linear.weight.T + linear.bias
    torch.testing.assert_close(lmf(latents), expected)


def test_without_the_path_the_layer_and_its_initial_factors_are_unchanged():
    torch.manual_seed(3)
    plain = LowRankFusion(input_dims=DIMS, rank=3, output_dim=4, init="additive")
    torch.manual_seed(3)
    off = LowRankFusion(input_dims=DIMS, rank=3, output_dim=4, init="additive", additive_path=False)
    assert off.additive is None
    assert off.state_dict().keys() == plain.state_dict().keys()
    for a, b in zip(off.factors, plain.factors, strict=True):
        torch.testing.assert_close(a, b)


def test_with_the_factors_zeroed_the_layer_is_concatenation_fusion():
    lmf = LowRankFusion(input_dims=DIMS, rank=3, output_dim=4, additive_path=True).double()
    concat = ConcatFusion(input_dims=DIMS, output_dim=4).double()
    with torch.no_grad():
        for factor in lmf.factors:
            factor.zero_()
    concat.load_state_dict(lmf.additive.state_dict())
    latents = _latents(DIMS)
    torch.testing.assert_close(lmf(latents), concat(latents))


@pytest.mark.parametrize("head", ["mlp", "linear"])
def test_known_answer_the_classifier_with_the_interactions_zeroed_equals_concat(head):
    """Same encoders, same head: an LMF classifier whose factors are all zero is the concat classifier."""
    dims = {"image": 5, "audio": 4, "text": 3}
    jwae = JWAEConfig(latent_dim=3, hidden_dim=8, num_projections=10, dropout=0.0)
    lmf_model = MultimodalClassifier(
        input_dims=dims,
        num_classes=3,
        jwae=jwae,
        fusion=FusionConfig(rank=2, fused_dim=6, head=head, additive_path=True),
    ).double()
    concat_model = MultimodalClassifier(
        input_dims=dims, num_classes=3, jwae=jwae, fusion=FusionConfig(model="concat", fused_dim=6, head=head)
    ).double()
    assert isinstance(lmf_model.fusion, LowRankFusion)
    assert lmf_model.fusion.additive is not None
    with torch.no_grad():
        for factor in lmf_model.fusion.factors:
            factor.zero_()
    concat_model.jwae.load_state_dict(lmf_model.jwae.state_dict())
    concat_model.head.load_state_dict(lmf_model.head.state_dict())
    concat_model.fusion.load_state_dict(lmf_model.fusion.additive.state_dict())
    g = torch.Generator().manual_seed(1)
    views = {m: torch.randn(7, d, dtype=F64, generator=g) for m, d in dims.items()}
    lmf_model.eval(), concat_model.eval()
    torch.testing.assert_close(lmf_model(views), concat_model(views))


def test_the_fusion_parameter_count_includes_the_path():
    dims = {"image": 5, "audio": 4}
    jwae = JWAEConfig(latent_dim=3, hidden_dim=8)
    on = MultimodalClassifier(
        input_dims=dims, num_classes=3, jwae=jwae, fusion=FusionConfig(rank=2, fused_dim=6, additive_path=True)
    )
    off = MultimodalClassifier(
        input_dims=dims, num_classes=3, jwae=jwae, fusion=FusionConfig(rank=2, fused_dim=6, additive_path=False)
    )
    assert off.fusion_parameter_count() == 2 * 2 * 6 * (3 + 1)
    assert on.fusion_parameter_count() == off.fusion_parameter_count() + 6 * (2 * 3 + 1)


def test_an_ard_run_whose_first_stage_carries_the_path_fits_and_loads(tmp_path):
    """The deterministic first stage has the path; the Bayesian head is built on the latents, as before."""
    data = str(write_interaction_npz(tmp_path / "d.npz"))
    config = dataclasses.replace(
        small_config(data, epochs=2),
        fusion=FusionConfig(rank=3, fused_dim=8, rank_prior="ard", additive_path=True),
        bayes=BayesConfig(svi_steps=30, posterior_samples=4),
    )
    run = fit(config, tmp_path / "run")
    loaded = load_run(run.path)
    assert type(loaded.model).__name__ == "BayesianFusionClassifier"
    _, _, test = loaded.splits()
    assert loaded.model.predictive_logits(loaded.tensors(test).views, 4).shape == (4, len(test.labels), 2)
