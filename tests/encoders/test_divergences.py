import numpy as np
import ot
import pytest
import torch

from probfusion.encoders import (
    ModalityEncoder,
    mmd_imq,
    mmd_imq_to_prior,
    prior_divergence,
    sliced_wasserstein,
    sliced_wasserstein_to_prior,
)
from probfusion.options import PriorPenalty

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- sliced Wasserstein -------------------------------------------------------------------------------


def test_swd_near_zero_for_a_large_prior_sample_and_large_when_shifted_or_scaled():
    g = _gen(0)
    z = torch.randn(4000, 3, dtype=F64, generator=g)
    null = sliced_wasserstein_to_prior(z, num_projections=50, generator=g)
    # Shift by 2 in every coordinate: SW_2^2 = E_theta (theta . v)^2 = |v|^2 / d = 4, so SW_2 = 2.
    shifted = sliced_wasserstein_to_prior(z + 2.0, num_projections=50, generator=g)
    # Scale by 3: every projection is N(0, 9) against N(0, 1), W_2 = 3 - 1 = 2.
    scaled = sliced_wasserstein_to_prior(3.0 * z, num_projections=50, generator=g)
    assert null < 0.08
    assert shifted == pytest.approx(2.0, abs=0.25)
    assert scaled == pytest.approx(2.0, abs=0.25)


def test_swd_in_one_dimension_is_the_exact_two_wasserstein_distance():
    # In 1-D every direction is +-1, so SW_2 is W_2 itself: compare with sorted samples and with POT's emd2.
    z = torch.randn(50, 1, dtype=F64, generator=_gen(1)) * 1.5 + 0.7
    got = sliced_wasserstein_to_prior(z, num_projections=5, generator=_gen(7))
    prior = torch.randn(50, 1, dtype=F64, generator=_gen(7))  # drawn first, from the same generator
    sorted_w2 = (z.flatten().sort().values - prior.flatten().sort().values).pow(2).mean().sqrt()
    torch.testing.assert_close(got, sorted_w2, rtol=1e-12, atol=1e-12)

    x, y = z.numpy(), prior.numpy()
    emd_w2 = np.sqrt(ot.emd2(np.full(50, 1 / 50), np.full(50, 1 / 50), ot.dist(x, y, metric="sqeuclidean")))
    assert got.item() == pytest.approx(emd_w2, rel=1e-10)


def test_two_sample_swd_matches_emd_for_unequal_sizes_in_one_dimension():
    x = torch.randn(30, 1, dtype=F64, generator=_gen(2))
    y = torch.randn(45, 1, dtype=F64, generator=_gen(3)) + 1.0
    got = sliced_wasserstein(x, y, num_projections=3, generator=_gen(0))
    cost = ot.dist(x.numpy(), y.numpy(), metric="sqeuclidean")
    expected = np.sqrt(ot.emd2(np.full(30, 1 / 30), np.full(45, 1 / 45), cost))
    assert got.item() == pytest.approx(expected, rel=1e-9)


def test_equal_size_swd_matches_pot_on_the_same_directions_in_several_dimensions():
    # Equal sizes take the sorted-projection route; POT's quantile route on the same directions is the reference.
    x = torch.randn(64, 5, dtype=F64, generator=_gen(4))
    y = 2.0 * torch.randn(64, 5, dtype=F64, generator=_gen(5)) + 0.5
    got = sliced_wasserstein(x, y, num_projections=20, generator=_gen(9))
    directions = torch.randn(5, 20, dtype=F64, generator=_gen(9))
    directions = directions / directions.norm(dim=0, keepdim=True)
    expected = ot.sliced_wasserstein_distance(x, y, projections=directions, p=2)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_swd_is_differentiable_and_deterministic_under_a_generator():
    z = (torch.randn(64, 4, dtype=F64) + 1.0).requires_grad_()
    a = sliced_wasserstein_to_prior(z, num_projections=20, generator=_gen(5))
    b = sliced_wasserstein_to_prior(z, num_projections=20, generator=_gen(5))
    c = sliced_wasserstein_to_prior(z, num_projections=20, generator=_gen(6))
    assert a.item() == b.item()
    assert a.item() != c.item()
    a.backward()
    assert torch.isfinite(z.grad).all()
    assert z.grad.norm() > 0


def test_swd_leaves_the_global_rng_alone():
    z = torch.randn(16, 2)
    state = torch.get_rng_state()
    sliced_wasserstein_to_prior(z, num_projections=10, generator=_gen(0))
    assert torch.equal(state, torch.get_rng_state())


# --- MMD ----------------------------------------------------------------------------------------------


def test_mmd_matches_a_brute_force_unbiased_estimate():
    x = torch.randn(6, 2, dtype=F64, generator=_gen(0))
    y = torch.randn(5, 2, dtype=F64, generator=_gen(1)) + 0.5
    scales = (0.5, 1.0, 2.0)

    def k(a, b):
        sq = float(((a - b) ** 2).sum())
        return sum(2 * 2 * s / (2 * 2 * s + sq) for s in scales)

    kxx = sum(k(x[i], x[j]) for i in range(6) for j in range(6) if i != j) / (6 * 5)
    kyy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    kxy = sum(k(x[i], y[j]) for i in range(6) for j in range(5)) / (6 * 5)
    assert mmd_imq(x, y, scales=scales).item() == pytest.approx(kxx + kyy - 2 * kxy, rel=1e-12)


def test_mmd_is_zero_in_expectation_for_prior_samples_and_larger_when_shifted():
    g = _gen(0)
    null = torch.stack([mmd_imq_to_prior(torch.randn(100, 3, dtype=F64, generator=g), generator=g) for _ in range(30)])
    standard_error = null.std() / 30**0.5
    assert abs(null.mean()) < 4 * standard_error  # unbiased: no systematic offset
    shifted = mmd_imq_to_prior(torch.randn(100, 3, dtype=F64, generator=g) + 1.0, generator=g)
    assert shifted > 20 * null.std()


def test_mmd_is_deterministic_under_a_generator():
    z = torch.randn(32, 3, dtype=F64)
    assert mmd_imq_to_prior(z, generator=_gen(3)).item() == mmd_imq_to_prior(z, generator=_gen(3)).item()


# --- dispatcher ---------------------------------------------------------------------------------------


def test_prior_divergence_dispatches_and_none_draws_nothing():
    z = torch.randn(32, 3, dtype=F64)
    swd = prior_divergence(z, PriorPenalty.SWD, num_projections=10, generator=_gen(1))
    assert swd.item() == sliced_wasserstein_to_prior(z, num_projections=10, generator=_gen(1)).item()
    mmd = prior_divergence(z, "mmd", num_projections=10, generator=_gen(1))
    assert mmd.item() == mmd_imq_to_prior(z, generator=_gen(1)).item()
    g = _gen(1)
    state = g.get_state()
    none = prior_divergence(z, PriorPenalty.NONE, num_projections=10, generator=g)
    assert none.item() == 0.0
    assert none.shape == ()
    assert torch.equal(state, g.get_state())


# --- the penalty pulls latents toward N(0, I) ----------------------------------------------------------


@pytest.mark.parametrize("kind", [PriorPenalty.SWD, PriorPenalty.MMD])
def test_prior_penalty_pulls_latents_toward_the_standard_normal(kind):
    torch.manual_seed(0)
    encoder = ModalityEncoder(input_dim=3, latent_dim=2, hidden_dim=16).double()
    with torch.no_grad():  # start far from N(0, I): shifted by 3 and stretched
        encoder.net[-1].weight.mul_(3.0)
        encoder.net[-1].bias.add_(3.0)
    x = torch.randn(256, 3, dtype=F64, generator=_gen(0))
    g = _gen(1)

    def penalty():
        return prior_divergence(encoder(x), kind, num_projections=50, generator=g)

    def moments():
        z = encoder(x).detach()
        return z.mean(0).norm().item(), (torch.cov(z.T) - torch.eye(2, dtype=F64)).norm().item()

    start, (mean_start, _) = penalty().item(), moments()
    optimizer = torch.optim.Adam(encoder.parameters(), lr=2e-2)
    for _ in range(80):
        optimizer.zero_grad()
        penalty().backward()
        optimizer.step()
    end, (mean_end, cov_end) = penalty().item(), moments()

    assert mean_start > 3.0
    assert end < 0.2 * start
    assert mean_end < 0.3
    assert cov_end < 0.5
