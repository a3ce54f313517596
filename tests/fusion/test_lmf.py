import string

import pytest
import torch

from probfusion.errors import ConfigError, InputDataError
from probfusion.fusion import LowRankFusion, TensorFusion

F64 = torch.float64
DIMS = {2: [2, 3], 3: [2, 3, 1]}


def _latents(dims, n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, dtype=F64, generator=g) for d in dims]


def _brute_force(latents, weight):
    """Contract the full outer product of the [z_m; 1] with a (h, d_1+1, ..., d_M+1) weight."""
    tilde = [torch.cat([z, torch.ones(z.shape[0], 1, dtype=z.dtype)], dim=1) for z in latents]
    axes = string.ascii_lowercase[: len(tilde)]
    outer = torch.einsum(",".join(f"n{a}" for a in axes) + f"->n{axes}", *tilde)
    return torch.einsum(f"n{axes},h{axes}->nh", outer, weight)


@pytest.mark.parametrize("num_modalities", [2, 3])
def test_shapes(num_modalities):
    dims = DIMS[num_modalities]
    lmf = LowRankFusion(input_dims=dims, rank=4, output_dim=6).double()
    latents = _latents(dims)
    assert lmf(latents).shape == (5, 6)
    assert lmf.component_outputs(latents).shape == (5, 4, 6)
    assert lmf.full_weight().shape == (6, *(d + 1 for d in dims))
    assert [tuple(f.shape) for f in lmf.factors] == [(4, 6, d + 1) for d in dims]


@pytest.mark.parametrize("num_modalities", [2, 3])
def test_lmf_equals_the_full_tensor_contraction_and_tfn_with_that_weight(num_modalities):
    dims = DIMS[num_modalities]
    lmf = LowRankFusion(input_dims=dims, rank=3, output_dim=4).double()
    latents = _latents(dims)
    weight = lmf.full_weight()
    torch.testing.assert_close(lmf(latents), _brute_force(latents, weight), rtol=1e-12, atol=1e-12)

    tfn = TensorFusion(input_dims=dims, output_dim=4).double()
    with torch.no_grad():
        tfn.weight_tensor().copy_(weight)
    torch.testing.assert_close(tfn(latents), lmf(latents), rtol=1e-12, atol=1e-12)


def test_components_sum_to_the_output():
    lmf = LowRankFusion(input_dims=[2, 3], rank=5, output_dim=4).double()
    latents = _latents([2, 3])
    torch.testing.assert_close(lmf.component_outputs(latents).sum(dim=1), lmf(latents))


def test_every_factor_is_a_registered_parameter_and_gets_a_gradient():
    lmf = LowRankFusion(input_dims=[2, 3, 4], rank=3, output_dim=4).double()
    assert len(list(lmf.parameters())) == 3
    assert sum(p.numel() for p in lmf.parameters()) == 3 * 4 * (3 + 4 + 5)
    lmf(_latents([2, 3, 4])).pow(2).sum().backward()
    assert all(f.grad is not None and f.grad.norm() > 0 for f in lmf.factors)


@pytest.mark.parametrize("num_modalities", [2, 3, 4])
def test_initial_output_variance_is_about_one_for_any_number_of_modalities(num_modalities):
    torch.manual_seed(0)
    variances = []
    for _ in range(10):
        lmf = LowRankFusion(input_dims=[8] * num_modalities, rank=4, output_dim=16)
        with torch.no_grad():
            variances.append(lmf([torch.randn(500, 8) for _ in range(num_modalities)]).var().item())
    assert 0.7 < sum(variances) / len(variances) < 1.4


def test_one_modality_is_a_linear_layer():
    lmf = LowRankFusion(input_dims=[3], rank=2, output_dim=4).double()
    (z,) = _latents([3])
    weight = lmf.full_weight()  # (h, d + 1)
    torch.testing.assert_close(lmf([z]), z @ weight[:, :3].T + weight[:, 3])


def test_errors():
    with pytest.raises(ConfigError, match="rank"):
        LowRankFusion(input_dims=[2, 2], rank=0, output_dim=3)
    with pytest.raises(ConfigError, match="input_dims"):
        LowRankFusion(input_dims=[], rank=2, output_dim=3)
    with pytest.raises(InputDataError, match="2 modalities"):
        LowRankFusion(input_dims=[2, 2], rank=2, output_dim=3)(_latents([2]))


@pytest.mark.parametrize("num_modalities", [2, 5])
def test_additive_init_starts_near_late_fusion_whatever_the_number_of_modalities(num_modalities):
    # Component i starts as +-r^(-1/2) prod_m (1 + u_m . z_m): the constant and the linear part carry unit
    # variance each, the interactions (M - 1) / (2 M) < 1/2, whatever M (the random init's grow with M).
    dims, rank = [16] * num_modalities, 16
    lmf = LowRankFusion(input_dims=dims, rank=rank, output_dim=256, init="additive").double()
    constants = [factor[..., -1] for factor in lmf.factors]
    k = rank ** (-0.5 / num_modalities)
    torch.testing.assert_close(constants[0].abs(), torch.full_like(constants[0], k))
    for c in constants[1:]:
        torch.testing.assert_close(c, torch.full_like(c, k))
    latents = _latents(dims, n=2000, seed=1)
    linear_only = [z * 0 for z in latents]
    with torch.no_grad():
        total = lmf(latents).var().item()
        offset = lmf(linear_only).var().item()
    assert 0.5 < offset < 2.0
    assert total < 3.0  # 1 (constant) + 1 (linear) + < 0.5 (interactions), with sampling slack


def test_unknown_init_is_refused():
    with pytest.raises(ConfigError, match="LMF init"):
        LowRankFusion(input_dims=[2, 3], rank=2, output_dim=4, init="zeros")
