"""Posterior draws as InferenceData: groups, named dims, label-invariant variables; NUTS and deterministic runs."""

import json

import numpy as np
import pytest
import torch

from probfusion.api import load_run
from probfusion.diagnostics import (
    component_ablation,
    component_attributions,
    draw_posterior,
    effective_rank_posterior,
    evaluation_table,
    posterior,
)
from probfusion.errors import CheckpointError, ConfigError


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


def test_bayesian_ablation_shares_match_the_attribution_component_shares(runs):
    run = load_run(runs["svi"])
    attribution = component_attributions(run, num_draws=30, seed=2)
    ablation = component_ablation(run, split="train", num_draws=30, seed=2)
    assert ablation.logit_variance_share.sum() == pytest.approx(1.0)
    # Shares are read on different rows (reference latents vs the split), so they agree in order, not exactly.
    assert int(ablation.logit_variance_share.argmax()) == int(attribution.component_share.mean(0).argmax())


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
