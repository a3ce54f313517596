import pytest
import torch

from probfusion.fusion.opinions import (
    average_evidence,
    conflict_degree,
    dempster_shafer,
    dempster_shafer_pair,
    opinion,
)

F64 = torch.float64


def test_two_views_match_the_hand_computed_combination():
    # c = 3. View 1: e = (2, 1, 0), S = 6, b = (1/3, 1/6, 0), u = 1/2. View 2: e = (0, 3, 0), b = (0, 1/2, 0), u = 1/2.
    # C = 1/2 * 1/2 - 1/6 * 1/2 = 1/6; b = (1/6, 5/12, 0) / (5/6) = (1/5, 1/2, 0); u = (1/4) / (5/6) = 3/10.
    e1 = torch.tensor([[2.0, 1.0, 0.0]], dtype=F64)
    e2 = torch.tensor([[0.0, 3.0, 0.0]], dtype=F64)
    b1, u1 = opinion(e1 + 1)
    b2, u2 = opinion(e2 + 1)
    torch.testing.assert_close(b1, torch.tensor([[1 / 3, 1 / 6, 0.0]], dtype=F64))
    b, u = dempster_shafer_pair(b1, u1, b2, u2)
    torch.testing.assert_close(b, torch.tensor([[0.2, 0.5, 0.0]], dtype=F64))
    torch.testing.assert_close(u, torch.tensor([0.3], dtype=F64))
    # Evidence form: S = c / u = 10, e = b S = (2, 5, 0).
    torch.testing.assert_close(dempster_shafer(torch.stack([e1, e2])), torch.tensor([[2.0, 5.0, 0.0]], dtype=F64))


@pytest.mark.parametrize("num_views", [2, 3, 5])
def test_identical_opinions_follow_the_closed_form(num_views):
    g = torch.Generator().manual_seed(0)
    c = 4
    e = torch.rand(6, c, generator=g, dtype=F64) * 5
    combined = dempster_shafer(e.expand(num_views, -1, -1))
    torch.testing.assert_close(combined, c * ((1 + e / c) ** num_views - 1))
    # The same by folding the belief-form rule pairwise.
    b, u = opinion(e + 1)
    acc_b, acc_u = b, u
    for _ in range(num_views - 1):
        acc_b, acc_u = dempster_shafer_pair(acc_b, acc_u, b, u)
    expect_b, expect_u = opinion(combined + 1)
    torch.testing.assert_close(acc_b, expect_b)
    torch.testing.assert_close(acc_u, expect_u)
    assert torch.all(acc_u < u)  # agreeing views lower the uncertainty


def test_the_rule_is_associative_and_commutative():
    g = torch.Generator().manual_seed(1)
    ops = [opinion(torch.rand(5, 3, generator=g, dtype=F64) * 4 + 1) for _ in range(3)]
    left = dempster_shafer_pair(*dempster_shafer_pair(*ops[0], *ops[1]), *ops[2])
    right = dempster_shafer_pair(*ops[0], *dempster_shafer_pair(*ops[1], *ops[2]))
    swapped = dempster_shafer_pair(*ops[1], *ops[0])
    torch.testing.assert_close(left[0], right[0])
    torch.testing.assert_close(left[1], right[1])
    torch.testing.assert_close(swapped[0], dempster_shafer_pair(*ops[0], *ops[1])[0])


def test_average_evidence_is_rcmls_two_view_aggregation():
    g = torch.Generator().manual_seed(2)
    e = torch.rand(2, 4, 3, generator=g, dtype=F64) * 6
    b1, u1 = opinion(e[0] + 1)
    b2, u2 = opinion(e[1] + 1)
    b, u = opinion(average_evidence(e) + 1)
    torch.testing.assert_close(b, (b1 * u2[:, None] + b2 * u1[:, None]) / (u1 + u2)[:, None])
    torch.testing.assert_close(u, 2 * u1 * u2 / (u1 + u2))


def test_conflict_degree_is_zero_for_agreement_and_grows_with_conflict():
    a = torch.tensor([5.0, 1.0, 1.0], dtype=F64)
    assert conflict_degree(a, a).item() == pytest.approx(0.0)
    mild = conflict_degree(a, torch.tensor([3.0, 2.0, 1.0], dtype=F64)).item()
    strong = conflict_degree(a, torch.tensor([1.0, 5.0, 1.0], dtype=F64)).item()
    # Hand value: P = (5/7, 1/7, 1/7) vs (1/7, 5/7, 1/7): distance 4/7; u = 3/7 each, certainty (4/7)^2.
    assert strong == pytest.approx(4 / 7 * (4 / 7) ** 2)
    assert 0 < mild < strong
