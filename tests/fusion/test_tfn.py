import math

import pytest
import torch

from probfusion.errors import ConfigError
from probfusion.fusion import TensorFusion

F64 = torch.float64


@pytest.mark.parametrize("dims", [[2, 3], [2, 3, 1]])
def test_shapes_and_parameter_count(dims):
    tfn = TensorFusion(input_dims=dims, output_dim=4)
    latents = [torch.randn(5, d) for d in dims]
    assert tfn.outer_features(latents).shape == (5, math.prod(d + 1 for d in dims))
    assert tfn(latents).shape == (5, 4)
    assert tfn.weight_tensor().shape == (4, *(d + 1 for d in dims))
    assert sum(p.numel() for p in tfn.parameters()) == 4 * math.prod(d + 1 for d in dims)


def test_outer_features_are_the_row_major_outer_product():
    a, b, c = torch.randn(3, 2, dtype=F64), torch.randn(3, 1, dtype=F64), torch.randn(3, 2, dtype=F64)
    tfn = TensorFusion(input_dims=[2, 1, 2], output_dim=1).double()
    ones = torch.ones(3, 1, dtype=F64)
    ta, tb, tc = (torch.cat([x, ones], dim=1) for x in (a, b, c))
    expected = torch.einsum("ni,nj,nk->nijk", ta, tb, tc).reshape(3, -1)
    torch.testing.assert_close(tfn.outer_features([a, b, c]), expected)
    # The constant coordinates keep the unimodal terms and the bias: the last feature is exactly 1.
    assert torch.equal(tfn.outer_features([a, b, c])[:, -1], torch.ones(3, dtype=F64))


def test_weight_tensor_is_a_view_of_the_layer():
    tfn = TensorFusion(input_dims=[1, 1], output_dim=2)
    with torch.no_grad():
        tfn.weight_tensor().zero_()
    assert tfn.linear.weight.abs().sum().item() == 0.0


def test_an_oversized_tensor_is_refused_with_advice():
    with pytest.raises(ConfigError, match="lmf"):
        TensorFusion(input_dims=[16] * 6, output_dim=32)
