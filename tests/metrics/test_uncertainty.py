import math

import pytest
import torch
from scipy.stats import entropy

from probfusion.metrics.uncertainty import mutual_information, predictive_entropy


def test_entropy_matches_scipy_and_mi_is_the_entropy_gap():
    g = torch.Generator().manual_seed(0)
    probs = torch.randn(7, 5, 4, generator=g, dtype=torch.float64).softmax(-1)
    mean = probs.mean(0)
    expected_h = entropy(mean.numpy(), axis=-1)
    expected_mi = expected_h - entropy(probs.numpy(), axis=-1).mean(0)
    assert torch.allclose(predictive_entropy(probs), torch.as_tensor(expected_h))
    assert torch.allclose(mutual_information(probs), torch.as_tensor(expected_mi))


def test_one_draw_has_zero_mi_and_disagreeing_draws_have_log2():
    one = torch.tensor([[[0.2, 0.8], [1.0, 0.0]]], dtype=torch.float64)
    assert mutual_information(one).tolist() == [0.0, 0.0]
    assert predictive_entropy(one)[1].item() == 0.0  # 0 log 0 = 0, no NaN
    split = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]], dtype=torch.float64)
    assert mutual_information(split).item() == pytest.approx(math.log(2))


def test_entropy_is_aleatoric_plus_epistemic_to_numerical_precision():
    from probfusion.metrics.uncertainty import aleatoric_entropy, expected_entropy

    g = torch.Generator().manual_seed(1)
    probs = (3.0 * torch.randn(50, 40, 6, generator=g, dtype=torch.float64)).softmax(-1)
    total = predictive_entropy(probs)
    assert torch.allclose(total, expected_entropy(probs) + mutual_information(probs), atol=1e-6, rtol=0)
    assert aleatoric_entropy is expected_entropy
    assert bool((total <= math.log(6) + 1e-12).all())
