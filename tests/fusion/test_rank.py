"""Effective-rank read-outs from the function: covariance, Shapley and leave-one-out shares, collinear groups."""

import itertools

import pytest
import torch

from probfusion.fusion.bayesian_lmf import component_activations
from probfusion.fusion.rank import (
    contribution_covariance,
    leave_one_out_shares,
    read_components,
    summarise_rank,
    variance_shares,
)


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


def _case_draws(generator, dims=(3, 4), classes=3):
    """Five draws of a rank-3 head: as drawn, then components 0 and 1 made copies / cancelling / two halves."""
    factors = [torch.randn(5, 3, d + 1, generator=generator, dtype=torch.float64) for d in dims]
    theta = torch.randn(5, classes, 3, generator=generator, dtype=torch.float64)
    for f in factors:
        f[1:, 1] = f[1:, 0]  # draws 1-4: component 1 has component 0's factors
    theta[1, :, 1] = theta[1, :, 0]  # redundant: two identical components, same Theta
    theta[2, :, 1] = -theta[2, :, 0]  # cancelling: the pair is a constant function
    theta[3, :, :2] = theta[3, :, :1] / 2  # split: one component as two halves
    theta[4, :, 1] = theta[4, :, 0]  # redundant, with the third component removed
    theta[4, :, 2] = 0.0
    draws = {f"factor_{k}": f for k, f in enumerate(factors)}
    draws["theta"] = theta
    latents = [torch.randn(200, d, generator=generator, dtype=torch.float64) for d in dims]
    return latents, draws


def test_rank_read_out_merges_redundant_cancelling_and_split_components():
    latents, draws = _case_draws(torch.Generator().manual_seed(0))
    activations = component_activations(latents, draws)
    readout = read_components(activations, draws["theta"], threshold=0.005)
    # As drawn: 3; copies: 1 + 1; cancelling: 0 + 1; halves: 1 + 1; copies alone: 1 (the brief's cases).
    assert readout.rank.tolist() == [3, 2, 1, 2, 1]
    assert readout.leader[1:, 1].tolist() == readout.leader[1:, 0].tolist()  # the pair is one group
    assert float(readout.removal_shares[2, readout.leader[2, 0]]) == pytest.approx(0.0, abs=1e-12)
    assert torch.allclose(readout.shares.sum(-1), torch.ones(5, dtype=torch.float64))
    # The per-component read-out without covariances counted 3, 3, 3, 3, 2 here.
    own = contribution_covariance(activations, draws["theta"]).diagonal(dim1=-2, dim2=-1)
    assert ((own / own.sum(-1, keepdim=True)) > 0.005).sum(-1).tolist() == [3, 3, 3, 3, 2]


def test_rank_read_out_of_a_constant_head_is_zero_and_noisy_copies_still_merge():
    g = torch.Generator().manual_seed(1)
    latents, draws = _case_draws(g)
    activations = component_activations(latents, draws)
    theta = draws["theta"].clone()
    theta[2, :, 2] = 0.0  # draw 2: only the cancelling pair is left, the logits are constant
    readout = read_components(activations, theta, threshold=0.005)
    assert readout.rank[2] == 0
    assert torch.equal(readout.shares[2], torch.zeros(3, dtype=torch.float64))
    # Posterior noise on a copy (corr^2 about 0.9996) still merges; with a tight collinearity it does not.
    noisy = activations.clone()
    noise = torch.randn(noisy[..., 1].shape, generator=g, dtype=torch.float64)
    noisy[..., 1] += 0.02 * activations[..., 1].std(dim=-1, keepdim=True) * noise
    exact = read_components(activations, draws["theta"], threshold=0.005).rank
    assert torch.equal(read_components(noisy, draws["theta"], threshold=0.005).rank, exact)
    assert read_components(noisy, draws["theta"], threshold=0.005, collinearity=1e-6).rank[4] == exact[4] + 1


def test_shapley_and_leave_one_out_shares_match_their_definitions():
    g = torch.Generator().manual_seed(2)
    activations = torch.randn(2, 30, 4, generator=g, dtype=torch.float64)
    activations[..., 3] = 0.7 * activations[..., 0] + 0.3 * activations[..., 3]  # correlated components
    theta = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)

    def value(draw, members):  # Var_n of the class-centred logits of a coalition, summed over classes
        if not members:
            return 0.0
        logits = activations[draw][:, list(members)] @ theta[draw][:, list(members)].T
        return float((logits - logits.mean(-1, keepdim=True)).var(dim=0, unbiased=False).sum())

    shapley = torch.zeros(2, 4, dtype=torch.float64)
    for draw, order in itertools.product(range(2), itertools.permutations(range(4))):
        for k, i in enumerate(order):
            shapley[draw, i] += value(draw, order[: k + 1]) - value(draw, order[:k])
    total = torch.tensor([value(d, range(4)) for d in range(2)], dtype=torch.float64).unsqueeze(-1)
    assert torch.allclose(variance_shares(activations, theta), shapley / 24 / total, atol=1e-12)
    loo = torch.tensor(
        [[value(d, range(4)) - value(d, [j for j in range(4) if j != i]) for i in range(4)] for d in range(2)],
        dtype=torch.float64,
    )
    assert torch.allclose(leave_one_out_shares(activations, theta), loo / total, atol=1e-12)


def test_sorting_within_draws_makes_the_component_table_label_invariant():
    latents, draws = _case_draws(torch.Generator().manual_seed(3))
    activations = component_activations(latents, draws)
    precisions = torch.rand(5, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    precisions[1:, 1] = precisions[1:, 0]  # copies are copies in every site (which of them leads is a tie)
    relabel = torch.stack([torch.randperm(3, generator=torch.Generator().manual_seed(k)) for k in range(5)])
    tables = []
    relabelled = (
        activations.gather(-1, relabel.unsqueeze(1).expand_as(activations)),
        draws["theta"].gather(-1, relabel.unsqueeze(1).expand_as(draws["theta"])),
        precisions.gather(-1, relabel),
    )
    for a, theta, lam in ((activations, draws["theta"], precisions), relabelled):
        readout = read_components(a, theta, threshold=0.005)
        tables.append(summarise_rank(readout.shares, lam, threshold=0.005, readout=readout, sort_within_draw=True))
    for first, second in zip(tables[0]["components"], tables[1]["components"], strict=True):
        assert first == pytest.approx(second)
    assert tables[0]["component_order"] == "sorted within each draw"
    # Active components come first, so entry k is active exactly when the draw's rank exceeds k.
    ranks = read_components(activations, draws["theta"], threshold=0.005).rank
    expected = [float((ranks > k).double().mean()) for k in range(3)]
    assert [c["activity_probability"] for c in tables[0]["components"]] == pytest.approx(expected)
