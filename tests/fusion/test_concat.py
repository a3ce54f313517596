import pytest
import torch

from probfusion.fusion import ConcatFusion


@pytest.mark.parametrize("dims", [[3], [2, 3], [2, 3, 1]])
def test_concat_shapes_including_one_modality(dims):
    fusion = ConcatFusion(input_dims=dims, output_dim=4)
    assert fusion([torch.randn(5, d) for d in dims]).shape == (5, 4)


def test_concat_is_linear_in_the_concatenation():
    fusion = ConcatFusion(input_dims=[2, 3], output_dim=4).double()
    a, b = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    expected = torch.cat([a, b], dim=1) @ fusion.linear.weight.T + fusion.linear.bias
    torch.testing.assert_close(fusion([a, b]), expected)
