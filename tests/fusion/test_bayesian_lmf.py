"""The Bayesian seed-form LMF head: shapes, the vectorised logits, the plate's scaling and the guide."""

import pyro
import pytest
import torch
from pyro.infer import Trace_ELBO

from probfusion.errors import ConfigError
from probfusion.fusion.bayesian_lmf import BayesianLowRankFusion, HeadGuide, head_logits


def _head(dims=(3, 4), rank=5, classes=3, prior="ard"):
    return BayesianLowRankFusion(input_dims=list(dims), rank=rank, num_classes=classes, rank_prior=prior).double()


@pytest.mark.parametrize("dims", [(3, 4), (2, 3, 2)], ids=["M2", "M3"])
def test_vectorised_logits_match_the_dense_weight_tensor(dims):
    g = torch.Generator().manual_seed(0)
    head = _head(dims)
    guide = HeadGuide(model=head, guide="mean-field").double()
    guide.initialise(generator=g)
    draws = guide.sample(4, generator=g)
    latents = [torch.randn(6, d, generator=g, dtype=torch.float64) for d in dims]
    logits = head_logits(latents, draws)
    assert logits.shape == (4, 6, 3)
    # Independent reference: per draw, the dense CP tensor T[c, a, b, ...] contracted with the outer product.
    letters = "abcdefg"[: len(dims)]
    for k in range(4):
        dense = torch.einsum(
            "xr," + ",".join(f"r{a}" for a in letters) + "->x" + letters,
            draws["theta"][k],
            *[draws[f"factor_{m}"][k] for m in range(len(dims))],
        )
        aug = [torch.cat([z, torch.ones(6, 1, dtype=z.dtype)], 1) for z in latents]
        ref = torch.einsum("x" + letters + "," + ",".join(f"n{a}" for a in letters) + "->nx", dense, *aug)
        assert torch.allclose(logits[k], ref + draws["bias"][k], atol=1e-10)


def test_minibatch_likelihood_is_scaled_to_the_full_data_set():
    head = _head()
    latents = [torch.randn(10, 3, dtype=torch.float64), torch.randn(10, 4, dtype=torch.float64)]
    trace = pyro.poutine.trace(head).get_trace(latents, torch.zeros(10, dtype=torch.long), total_size=250)
    assert trace.nodes["obs"]["scale"] == pytest.approx(25.0)
    assert set(head.site_shapes()) <= set(trace.nodes)


def test_gaussian_prior_has_no_precision_site_and_elbo_is_finite_for_both_guides():
    latents = [torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 4, dtype=torch.float64)]
    labels = torch.arange(8) % 3
    for prior, guide_kind in (("gaussian", "mean-field"), ("ard", "low-rank")):
        head = _head(prior=prior)
        guide = HeadGuide(model=head, guide=guide_kind).double()
        guide.initialise(generator=torch.Generator().manual_seed(0))
        assert ("precision" in head.site_shapes()) is (prior == "ard")
        loss = Trace_ELBO().differentiable_loss(head, guide, latents, labels)
        loss.backward()
        assert torch.isfinite(loss)
        assert guide.loc.grad.abs().sum() > 0


def test_guide_pack_unpack_round_trip_and_seeded_draws():
    head = _head()
    guide = HeadGuide(model=head, guide="low-rank").double()
    guide.initialise(generator=torch.Generator().manual_seed(3))
    means = guide.means()
    assert torch.allclose(guide.pack(means), guide.loc.detach(), atol=1e-12)
    a = guide.sample(7, generator=torch.Generator().manual_seed(1))
    b = guide.sample(7, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["precision"].shape == (7, 5)
    assert bool((a["precision"] > 0).all())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rank_prior": "none"}, "ard' or 'gaussian"),
        ({"rank_prior": "lasso"}, "rank prior"),
        ({"input_dims": [3]}, "M >= 2"),
        ({"rank": 0}, "Rank must be"),
    ],
)
def test_bad_options_are_rejected_with_a_clear_message(kwargs, match):
    base = {"input_dims": [3, 4], "rank": 2, "num_classes": 3, "rank_prior": "ard"}
    with pytest.raises(ConfigError, match=match):
        BayesianLowRankFusion(**{**base, **kwargs})


def test_bad_guide_kind_is_rejected():
    with pytest.raises(ConfigError, match="guide"):
        HeadGuide(model=_head(), guide="full-rank")
