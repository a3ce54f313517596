import numpy as np
import pytest
import torch

from probfusion.metrics.calibration import expected_calibration_error, reliability_bins


def _reference_ece(probs: np.ndarray, labels: np.ndarray, bins: int) -> float:
    """Textbook loop: bins (lo, hi], the first one closed at 0."""
    conf, pred = probs.max(1), probs.argmax(1)
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (conf > lo) & (conf <= hi) if b > 0 else (conf >= lo) & (conf <= hi)
        if inside.any():
            total += inside.mean() * abs((pred[inside] == labels[inside]).mean() - conf[inside].mean())
    return float(total)


def test_hand_computed_two_bin_example():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.45, 0.55], [0.3, 0.7]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    # One bin holds everything (confidences 0.9, 0.8, 0.55, 0.7 > 0.5): accuracy 3/4, confidence 0.7375.
    assert expected_calibration_error(probs, labels, num_bins=2) == pytest.approx(abs(0.75 - 0.7375))


@pytest.mark.parametrize("seed", range(3))
def test_matches_an_independent_loop_on_random_probabilities(seed):
    g = torch.Generator().manual_seed(seed)
    probs = torch.randn(300, 5, generator=g, dtype=torch.float64).mul(2).softmax(-1)
    labels = torch.randint(0, 5, (300,), generator=g)
    got = expected_calibration_error(probs, labels)
    assert got == pytest.approx(_reference_ece(probs.numpy(), labels.numpy(), 15), abs=1e-12)


def test_perfectly_confident_and_right_has_zero_ece_and_bin_edges():
    probs = torch.eye(3, dtype=torch.float64)
    bins = reliability_bins(probs, torch.arange(3))
    assert expected_calibration_error(probs, torch.arange(3)) == 0.0
    assert bins.count.tolist() == [0] * 14 + [3]  # confidence exactly 1 falls in the last bin
    assert bins.edges[0].item() == 0.0
    assert bins.edges[-1].item() == 1.0
    assert len(bins.edges) == 16
    assert torch.isnan(bins.accuracy[0])
    assert bins.accuracy[-1].item() == 1.0


def test_boundary_confidence_goes_to_the_lower_bin():
    probs = torch.tensor([[0.6, 0.4]], dtype=torch.float64)  # 0.6 = 9/15 exactly on an edge
    assert reliability_bins(probs, torch.tensor([0])).count[8].item() == 1
