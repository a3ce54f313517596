"""Effective-rank read-outs."""

import pytest
import torch

from probfusion.fusion.rank import summarise_rank, variance_shares


def test_variance_shares_match_a_hand_computation():
    activations = torch.tensor([[[1.0, 2.0], [-1.0, 0.0], [0.0, -2.0]]], dtype=torch.float64)  # (1, 3, 2)
    theta = torch.tensor([[[2.0, 1.0], [0.0, 0.0]]], dtype=torch.float64)  # centred columns: (1, -1), (.5, -.5)
    # Var_n: 2/3 and 8/3; squared centred norms: 2 and 0.5 -> v = (4/3, 4/3).
    assert torch.allclose(variance_shares(activations, theta), torch.tensor([[0.5, 0.5]], dtype=torch.float64))


def test_rank_summary_median_interval_and_components():
    shares = torch.tensor([[0.6, 0.4, 0.0]] * 8 + [[0.5, 0.3, 0.2]] * 2, dtype=torch.float64)
    precisions = torch.tensor([[1.0, 2.0, 50.0]] * 10, dtype=torch.float64)
    out = summarise_rank(shares, precisions, threshold=0.05, interval=0.9)
    assert out["effective_rank"] == 2
    assert out["effective_rank_interval"] == [2, 3]
    assert out["effective_rank_distribution"] == pytest.approx([0.0, 0.0, 0.8, 0.2])
    third = out["components"][2]
    assert third["activity_probability"] == pytest.approx(0.2)
    assert third["variance_share"] == pytest.approx(0.04)
    assert third["precision_mean"] == pytest.approx(50.0)
