"""Posterior draws as InferenceData: groups, named dims, label-invariant variables; NUTS and deterministic runs."""

import json

import numpy as np
import pytest
import torch

from probfusion.api import load_run
from probfusion.diagnostics import (
    ablation_from_draws,
    component_ablation,
    component_attributions,
    components,
    draw_posterior,
    effective_rank_posterior,
    evaluation_table,
    posterior,
)
from probfusion.diagnostics.components import attribution_from_posterior, reference_rows
from probfusion.diagnostics.posterior import draws_from_posterior, effective_rank_from_posterior
from probfusion.errors import CheckpointError, ConfigError
from probfusion.fusion.bayesian_classifier import REFERENCE_SIZE
from probfusion.fusion.bayesian_lmf import component_activations
from probfusion.fusion.rank import contribution_covariance


def test_svi_posterior_has_the_documented_groups_dims_and_shapes(runs):
    idata = posterior(runs["svi"], num_draws=50)
    assert set(idata.groups()) == {"posterior", "log_likelihood", "observed_data"}
    post = idata.posterior
    assert post.sizes["chain"] == 1
    assert post.sizes["draw"] == 50
    assert post["precision"].dims == ("chain", "draw", "component")
    assert post["factor"].dims == ("chain", "draw", "modality", "component", "latent_coord")
    assert post["theta"].dims == ("chain", "draw", "output", "component")
    assert post["modality_share"].dims == ("chain", "draw", "component", "modality")
    assert list(post["modality"].values) == ["a", "b"]
    assert post.sizes["component"] == 3
    assert post.sizes["output"] == 2
    assert post.sizes["latent_coord"] == 4
    assert post.attrs["inference"] == "svi"
    np.testing.assert_allclose(post["modality_share"].sum("modality"), 1.0, atol=1e-9)
    np.testing.assert_allclose(post["variance_share"].sum("component"), 1.0, atol=1e-6)
    # Sorted quantities are the per-draw sort of the raw ones (label-invariant by construction).
    shares = post["variance_share"].values
    np.testing.assert_allclose(post["sorted_variance_share"].values, -np.sort(-shares, axis=-1), atol=1e-12)
    n_train = idata.observed_data["y"].size
    assert idata.log_likelihood["y"].shape == (1, 50, n_train)
    assert (idata.log_likelihood["y"].values <= 0).all()


def test_svi_draws_are_seeded_and_the_log_likelihood_split_can_be_dropped(runs):
    a = draw_posterior(runs["svi"], num_draws=6, seed=4).sites["theta"]
    b = draw_posterior(runs["svi"], num_draws=6, seed=4).sites["theta"]
    assert torch.equal(a, b)
    assert set(posterior(runs["svi"], num_draws=6, log_likelihood_split=None).groups()) == {"posterior"}
    with pytest.raises(ConfigError, match="Split must be one of"):
        posterior(runs["svi"], num_draws=6, log_likelihood_split="holdout")


def test_effective_rank_posterior_is_a_distribution_over_0_to_r(runs):
    out = effective_rank_posterior(runs["svi"], num_draws=40)
    assert len(out["effective_rank_distribution"]) == 4
    assert sum(out["effective_rank_distribution"]) == pytest.approx(1.0)
    lo, hi = out["effective_rank_interval"]
    assert lo <= out["effective_rank"] <= hi
    assert out["num_draws"] == 40


def test_nuts_draws_keep_their_chains(nuts_run):
    drawn = draw_posterior(nuts_run)
    assert drawn.shape == (2, 30)
    assert drawn.inference == "nuts"
    flat = drawn.flat()
    assert torch.equal(flat["theta"], nuts_run.model.draws_theta)  # chain-major, as the sampler stored them
    idata = posterior(nuts_run)
    assert idata.posterior.sizes["chain"] == 2
    assert idata.posterior.sizes["draw"] == 30


def test_deterministic_runs_have_attributions_but_no_posterior(runs):
    with pytest.raises(ConfigError, match=r"no posterior over rank factors.*--rank-prior ard"):
        posterior(runs["det"])
    attribution = component_attributions(runs["det"])
    assert attribution.component_share.shape == (1, 3)
    assert len(component_ablation(runs["det"]).rows()) == 3


def test_runs_without_rank_components_are_a_clear_error(runs):
    with pytest.raises(ConfigError, match=r"no rank components.*'tfn'"):
        component_attributions(runs["tfn"])


def test_bayesian_ablation_shares_are_the_own_variance_and_component_shares_add_covariances(runs):
    run = load_run(runs["svi"])
    attribution = component_attributions(run, num_draws=30, seed=2)
    draws = draw_posterior(run, num_draws=30, seed=2).flat()
    reference = list(run.model.reference_latents)
    covariance = contribution_covariance(component_activations(reference, draws), draws["theta"]).double()
    own = covariance.diagonal(dim1=-2, dim2=-1)
    # On the same rows, the removal's logit-variance share is the component's own variance over their sum;
    # the (Shapley) component share adds its covariances with the others (see attribution's docstring).
    same_rows = ablation_from_draws(reference, draws)
    expected = (own / own.sum(-1, keepdim=True)).mean(0)
    torch.testing.assert_close(same_rows.logit_variance_share, expected, atol=1e-6, rtol=0)
    shapley = covariance.sum(-1) / covariance.sum((-1, -2)).unsqueeze(-1)
    torch.testing.assert_close(attribution.component_share, shapley, atol=1e-6, rtol=0)
    # On the training split (the reference rows are a resample of it) they agree up to resampling noise.
    ablation = component_ablation(run, split="train", num_draws=30, seed=2)
    assert ablation.logit_variance_share.sum() == pytest.approx(1.0)
    torch.testing.assert_close(ablation.logit_variance_share, same_rows.logit_variance_share, rtol=0, atol=0.02)


def test_deterministic_reference_rows_are_a_seeded_sample_of_every_class(runs, monkeypatch):
    """Training rows sorted by class (as av-digits' are): the reference rows must not be the first classes only."""
    run = load_run(runs["det"])
    labels = torch.arange(10).repeat_interleave(120)  # 1200 rows, class-sorted
    row = torch.arange(1200.0)  # the first latent coordinate names the row, so the spy can see which were used
    latents = [torch.stack([row, torch.randn(1200), labels.float()], -1), torch.randn(1200, 3)]
    monkeypatch.setattr(components, "split_latents", lambda run, split: (latents, labels))
    seen = []
    original = components.attribution_from_lmf

    def spy(reference, fusion, modalities):
        seen.append(reference[0][:, 0].long())
        return original(reference, fusion, modalities)

    monkeypatch.setattr(components, "attribution_from_lmf", spy)
    component_attributions(run, seed=0)
    component_attributions(run, seed=0)
    component_attributions(run, seed=1)
    assert len(seen[0]) == REFERENCE_SIZE
    assert len(set(seen[0].tolist())) == len(seen[0])  # without replacement
    counts = torch.bincount(labels[seen[0]], minlength=10)
    assert bool((counts >= 30).all()), counts  # 51.2 expected per class; the first 512 rows hold classes 0-4 only
    assert torch.equal(seen[0], seen[1])  # seeded
    assert not torch.equal(seen[0], seen[2])
    assert torch.equal(reference_rows(100, seed=3).sort().values, torch.arange(100))  # fewer rows: all of them


def test_report_readouts_from_one_posterior_equal_the_standalone_ones(runs):
    run = load_run(runs["svi"])
    idata = posterior(run, num_draws=40, seed=5)
    draws = draws_from_posterior(idata)
    direct = draw_posterior(run, num_draws=40, seed=5)
    assert draws.modalities == direct.modalities
    for name, value in direct.sites.items():
        assert torch.equal(draws.sites[name], value), name
    assert effective_rank_from_posterior(idata) == effective_rank_posterior(run, num_draws=40, seed=5)
    stored, fresh = attribution_from_posterior(idata), component_attributions(run, num_draws=40, seed=5)
    assert torch.equal(stored.component_share, fresh.component_share)
    assert torch.equal(stored.modality_share, fresh.modality_share)
    assert stored.rows() == fresh.rows()
    given = component_ablation(run, draws=draws).rows()
    assert given == component_ablation(run, num_draws=40, seed=5).rows()


def test_evaluation_table_reads_every_evaluation(tmp_path):
    for name, eps in (("pgd-linf", [0.1, 0.2]), ("noise", [1.0])):
        folder = tmp_path / "evaluations" / name
        folder.mkdir(parents=True)
        rows = [{"attack": name, "eps": e, "accuracy": 0.9 - e} for e in eps]
        (folder / "rows.json").write_text(json.dumps({"rows": rows}))
    table = evaluation_table(tmp_path)
    assert list(table.columns[:3]) == ["evaluation", "attack", "eps"]
    assert len(table) == 3
    assert sorted(set(table["evaluation"])) == ["noise", "pgd-linf"]
    assert evaluation_table(tmp_path / "nothing").empty
    (tmp_path / "evaluations" / "noise" / "rows.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not an evaluation's rows file"):
        evaluation_table(tmp_path)
