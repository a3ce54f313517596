import pytest
import torch
from torch.distributions import Dirichlet, kl_divergence

from probfusion.fusion.opinions import conflict_degree
from probfusion.inference.evidential_loss import (
    annealing_weight,
    conflict_loss,
    evidential_loss,
    expected_cross_entropy,
    kl_to_uniform,
    rcml_loss,
    tmc_loss,
)

F64 = torch.float64


def test_expected_cross_entropy_matches_monte_carlo_under_the_dirichlet():
    alpha = torch.tensor([[4.0, 1.5, 0.7], [1.0, 1.0, 1.0], [0.9, 6.0, 2.0]], dtype=F64)
    labels = torch.tensor([0, 2, 1])
    torch.manual_seed(0)  # Dirichlet.sample draws from the global RNG
    draws = Dirichlet(alpha).sample((200_000,))  # (k, n, c)
    nll = -draws.gather(-1, labels.expand(draws.shape[0], -1).unsqueeze(-1)).squeeze(-1).log()
    mc, se = nll.mean(0), nll.std(0) / nll.shape[0] ** 0.5
    exact = expected_cross_entropy(alpha, labels)
    assert torch.all((exact - mc).abs() < 4 * se), (exact, mc, se)


def test_kl_to_uniform_matches_torch():
    alpha = torch.tensor([[4.0, 1.5, 0.7], [1.0, 1.0, 1.0]], dtype=F64)
    expect = kl_divergence(Dirichlet(alpha), Dirichlet(torch.ones_like(alpha)))
    torch.testing.assert_close(kl_to_uniform(alpha), expect)
    assert kl_to_uniform(alpha)[1].item() == pytest.approx(0.0)


def test_the_kl_only_sees_the_misleading_evidence_and_anneals():
    labels = torch.tensor([0])
    right = torch.tensor([[9.0, 1.0, 1.0]], dtype=F64)  # all evidence on the label: the KL term is zero
    assert evidential_loss(right, labels, kl_weight=1.0).item() == pytest.approx(
        expected_cross_entropy(right, labels).item()
    )
    wrong = torch.tensor([[1.0, 9.0, 1.0]], dtype=F64)
    assert evidential_loss(wrong, labels, kl_weight=1.0) > evidential_loss(wrong, labels, kl_weight=0.0)
    assert [annealing_weight(t, 10) for t in (1, 5, 10, 30)] == [0.1, 0.5, 1.0, 1.0]


def test_tmc_and_rcml_losses_combine_their_parts():
    g = torch.Generator().manual_seed(3)
    view_alpha = torch.rand(3, 5, 4, generator=g, dtype=F64) * 5 + 1
    alpha = torch.rand(5, 4, generator=g, dtype=F64) * 5 + 1
    labels = torch.tensor([0, 1, 2, 3, 0])
    parts = [evidential_loss(a, labels, kl_weight=0.5) for a in (alpha, *view_alpha)]
    assert tmc_loss(view_alpha, alpha, labels, kl_weight=0.5).item() == pytest.approx(sum(p.item() for p in parts))
    brute = sum(conflict_degree(view_alpha[p], view_alpha[q]) for p in range(3) for q in range(3) if p != q) / 2
    assert conflict_loss(view_alpha).item() == pytest.approx(brute.mean().item())
    got = rcml_loss(view_alpha, alpha, labels, kl_weight=0.5, conflict_weight=0.3).item()
    assert got == pytest.approx(sum(p.item() for p in parts) / 4 + 0.3 * brute.mean().item())
